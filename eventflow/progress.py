"""Progress bars on a terminal only: long work shows a tqdm bar when stderr is a terminal and
prints nothing otherwise (logs, pipes, CI). The library and the commands share these two.

>>> with progress(100, "demo", "ev") as bar:   # None unless stderr is a terminal
...     if bar is not None:
...         bar.update(100)
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

__all__ = ["progress", "terminal_bar"]


def terminal_bar(total: int, desc: str, unit: str = "it", *, unit_scale: bool = False, force: bool | None = None):
    """A tqdm bar on stderr (the caller closes it) when stderr is a terminal, else ``None``.
    ``force``: True shows one anyway, False never; ``total=0``: no total."""
    if force is False or (force is None and not sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total or None, desc=desc, unit=unit, unit_scale=unit_scale, leave=False, file=sys.stderr)


@contextmanager
def progress(total: int, desc: str, unit: str, *, unit_scale: bool = True):
    """``terminal_bar`` as a context manager: the bar (or ``None``), closed on exit."""
    bar = terminal_bar(total, desc, unit, unit_scale=unit_scale)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()
