"""Geometry check of decoded events (numba) beside the numpy reference it must equal.

Readers whose decoders do not check coordinates themselves drop the events outside the
sensor after decoding (``EventReader._drop_out_of_bounds``). ``out_of_bounds`` finds them in
one pass over the x|y words: per block of events, the block's largest x and y (branch free,
vectorised); only a block whose maxima fall outside is looked at event by event.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .words import xyp

U = np.uint64
BLOCK = 1024


@njit(cache=True, nogil=True)
def out_of_bounds(xyp_col, width, height):
    """``(count, first index)`` of the events with ``x >= width`` or ``y >= height`` (first -1
    when none); ``xyp_col`` is the strided column of each event's first word (x | y << 16 | ...).

    >>> import eventflow
    >>> ev = eventflow.from_fields([1, 9, 2, 3], [0, 0, 7, 1], [1, 0, 1, 0], [0, 1, 2, 3])
    >>> out_of_bounds(ev.view(np.uint64)[0::2], 4, 4)
    (2, 1)
    """
    n = xyp_col.shape[0]
    W = U(width)
    H = U(height)
    count = 0
    first = -1
    for s in range(0, n, BLOCK):
        blk = xyp_col[s:min(s + BLOCK, n)]
        mx = U(0)
        my = U(0)
        for e in range(blk.shape[0]):
            x, y, _ = xyp(blk[e])
            mx = max(mx, x)
            my = max(my, y)
        if mx < W and my < H:
            continue
        for e in range(blk.shape[0]):
            x, y, _ = xyp(blk[e])
            if x >= W or y >= H:
                if first < 0:
                    first = s + e
                count += 1
    return count, first


def out_of_bounds_reference(events, width, height):
    """numpy reference: ``(count, first index or -1)``."""
    bad = (events["x"] >= width) | (events["y"] >= height)
    return int(bad.sum()), int(np.argmax(bad)) if bad.any() else -1
