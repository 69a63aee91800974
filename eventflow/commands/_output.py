"""What the commands share about their output: a progress bar on a terminal only, and an output
file that never survives a failed write. (Not a subcommand: ``eventflow.cli`` skips ``_`` modules.)

>>> with progress(100, "demo", "ev") as bar:   # None unless stderr is a terminal
...     if bar is not None:
...         bar.update(100)
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

__all__ = ["progress", "removed_on_failure"]


@contextmanager
def progress(total: int, desc: str, unit: str, *, unit_scale: bool = True):
    """A tqdm bar (closed on exit) when stderr is a terminal, else ``None``; ``total=0``: no total."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=False)
    try:
        yield bar
    finally:
        bar.close()


@contextmanager
def removed_on_failure(path):
    """Delete ``path`` if the block raises (Ctrl-C included), so that a half-written file that
    looks complete is never left behind; the exception goes on."""
    try:
        yield
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise
