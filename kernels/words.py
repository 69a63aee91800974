"""The event word (numba): the first 8 bytes of an EVENT_DTYPE event read as one uint64.

EVENT_DTYPE (Metavision's EventCD) packs x u16 at byte 0, y u16 at byte 2 and p i16 at byte 4,
then two bytes of padding, then t i64 at byte 8. Kernels read a batch of events as its flat
``uint64`` view (word ``2 i``: x | y << 16 | p << 32 | padding << 48; word ``2 i + 1``: t) or as
the strided column of first words, and take the fields apart with ``xyp``. The padding bytes
are not guaranteed to be zero (a file or a packet may carry anything there), so p is masked
to its 16 bits: a negative p reads as a large unsigned number, which a ``p <= 1`` check
rejects (kernels that read the polarity as ``p != 0`` count it as ON). ``xyp_reference`` is the
plain numpy definition ``xyp`` must equal.
"""
from __future__ import annotations

import numpy as np
from numba import njit

U = np.uint64


@njit(cache=True, nogil=True, inline="always")
def xyp(word):
    """``(x, y, p)`` of an event's first word, each a uint64 (p's 16 bits, the padding masked off)."""
    return word & U(0xFFFF), (word >> U(16)) & U(0xFFFF), (word >> U(32)) & U(0xFFFF)


def xyp_reference(events: np.ndarray):
    """``(x, y, p)`` of an EVENT_DTYPE array as ``xyp`` gives them: uint64, p's bits read unsigned."""
    return (events["x"].astype(np.uint64), events["y"].astype(np.uint64),
            events["p"].view(np.uint16).astype(np.uint64))
