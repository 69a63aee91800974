"""The one event type of eventflow, and cheap conversions to and from it.

Events are a numpy structured array in Metavision's ``EventCD`` layout:
``x u16 @0, y u16 @2, p i16 @4, t i64 @8`` (microseconds), 16 bytes with 2 bytes
of padding, so that they read from and write to Metavision HDF5 files without
conversion.

>>> ev = from_fields(x=[1, 2], y=[3, 4], p=[1, 0], t=[10, 20])
>>> ev.dtype.itemsize, int(ev["t"][-1])
(16, 20)
"""
from __future__ import annotations

import numpy as np

EVENT_DTYPE = np.dtype(
    {
        "names": ["x", "y", "p", "t"],
        "formats": ["<u2", "<u2", "<i2", "<i8"],
        "offsets": [0, 2, 4, 8],
        "itemsize": 16,
    }
)

#: tonic's ``tonic.io.events_struct`` (x i16, y i16, t i64, p bool).
TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])


def empty(n: int = 0) -> np.ndarray:
    """An array of ``n`` events with the padding bytes zeroed."""
    return np.zeros(int(n), dtype=EVENT_DTYPE)


def uninitialized(n: int) -> np.ndarray:
    """An array of ``n`` events left uninitialised, for kernels that write whole 16-byte records."""
    return np.empty(int(n), dtype=EVENT_DTYPE)


def as_words(events: np.ndarray) -> np.ndarray:
    """The events as a flat uint64 view (two words per event), as the decode kernels write them."""
    return events.view(np.uint64)


def check_field(name: str, values) -> np.ndarray:
    """``values`` as an array, checked to fit EVENT_DTYPE's field ``name`` (x, y: 0..65535;
    p: -32768..32767; t: int64) so that storing them never wraps around; ValueError naming the
    field and the values' range otherwise (NaN included). Fractional floats are truncated toward
    zero, as numpy casts them. Types that always fit are not scanned."""
    v = np.asarray(values)
    target = EVENT_DTYPE[name]
    if v.size and not np.can_cast(v.dtype, target, "safe"):
        if v.dtype.kind not in "iufb":
            raise ValueError(f"field {name!r}: values of type {v.dtype} are not numbers")
        info = np.iinfo(target)
        lo, hi = v.min(), v.max()
        # (float compares: int64's max is not exact in float64, so t must stay below 2**63)
        if not (lo >= info.min and (hi <= info.max if v.dtype.kind != "f" else hi < 2.0 ** 63)):
            raise ValueError(f"field {name!r}: values {lo}..{hi} do not fit {target} ({info.min}..{info.max})")
    return v


def from_fields(x, y, p, t) -> np.ndarray:
    """Events from four equal-length sequences (copied, never aliased); values that do not fit
    their field (``check_field``) are a ValueError, never wrapped around."""
    x = np.asarray(x)
    n = x.shape[0]
    for name, v in (("y", y), ("p", p), ("t", t)):
        if np.shape(v)[0] != n:
            raise ValueError(f"field {name!r} has {np.shape(v)[0]} values, x has {n}")
    ev = empty(n)
    for name, v in (("x", x), ("y", y), ("p", p), ("t", t)):
        ev[name] = check_field(name, v)
    return ev


def as_events(arr: np.ndarray) -> np.ndarray:
    """Convert any structured array with fields x, y, p (or polarity/on), t to EVENT_DTYPE.

    Returns ``arr`` itself when it already has the layout (no copy), otherwise a new
    array: the caller's array is never modified.
    """
    arr = np.asarray(arr)
    if arr.dtype == EVENT_DTYPE:
        return arr
    names = arr.dtype.names or ()
    pol = next((k for k in ("p", "polarity", "on") if k in names), None)
    missing = [k for k in ("x", "y", "t") if k not in names]
    if missing or pol is None:
        raise ValueError(
            f"cannot convert dtype {arr.dtype} to events: needs fields x, y, t and p "
            f"(or polarity/on); missing {missing + ([] if pol else ['p'])}"
        )
    return from_fields(arr["x"], arr["y"], arr[pol], arr["t"])


def to_tonic(events: np.ndarray) -> np.ndarray:
    """A copy in tonic's ``events_struct`` dtype (x, y i16; t i64; p bool)."""
    out = np.empty(len(events), dtype=TONIC_DTYPE)
    out["x"] = events["x"]
    out["y"] = events["y"]
    out["t"] = events["t"]
    out["p"] = events["p"] != 0
    return out


def to_torch(events: np.ndarray) -> dict:
    """Zero-copy torch views of the fields: ``{'x','y': uint16, 'p': int16, 't': int64}``.

    The tensors share memory with ``events`` (strided views); call ``.to(torch.int64)``
    or ``.contiguous()`` where a kernel needs a dense copy.
    """
    import torch

    events = np.ascontiguousarray(events)
    return {k: torch.from_numpy(events[k]) for k in ("x", "y", "p", "t")}


def concatenate(chunks) -> np.ndarray:
    """Concatenate event arrays into one new EVENT_DTYPE array (an empty list gives an empty one).

    (``np.concatenate`` of padded structured arrays returns a packed dtype in numpy 2.x;
    this keeps the 16-byte layout and copies each chunk once.)
    """
    chunks = [c for c in chunks if len(c)]
    out = np.empty(sum(len(c) for c in chunks), dtype=EVENT_DTYPE)
    words = out.view(np.uint64)
    pos = 0
    for c in chunks:
        if c.dtype == EVENT_DTYPE and c.flags.c_contiguous:
            words[2 * pos:2 * (pos + len(c))] = c.view(np.uint64)  # a plain copy, not field by field
        else:
            out[pos:pos + len(c)] = c
        pos += len(c)
    return out
