"""What the commands share about their output: an output file that never survives a failed
write (progress bars: ``eventflow.progress``). (Not a subcommand: ``eventflow.cli`` skips ``_``
modules.)
"""
from __future__ import annotations

import os
from contextlib import contextmanager

__all__ = ["removed_on_failure"]


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
