"""Shared fixtures: the real recordings live in ../shared/data/real beside the repository."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("EVENTFLOW_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


def real(name: str) -> Path:
    """Path of a real recording; the test is skipped with a clear reason if it is absent."""
    p = REAL / name
    if not p.exists():
        pytest.skip(f"real recording {p} not present")
    return p


@pytest.fixture
def real_path():
    return real
