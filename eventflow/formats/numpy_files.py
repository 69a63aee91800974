"""``.npy`` (a structured array with fields x, y, p, t) and ``.npz`` (arrays x, y, p, t).

An .npz written here also holds ``width`` and ``height`` where known. Reading an
.npy memory-maps it, so memory stays bounded whatever the file size.
"""
from __future__ import annotations

import zipfile

import numpy as np

from ..errors import EventFormatError
from ..events import EVENT_DTYPE, as_events, concatenate, empty
from .reader import EventReader
from .writer import EventWriter


def _check_fields(names, path):
    names = names or ()
    pol = [k for k in ("p", "polarity", "on") if k in names]
    missing = [k for k in ("x", "y", "t") if k not in names] + ([] if pol else ["p"])
    if missing:
        raise EventFormatError(f"needs fields x, y, p, t; missing {', '.join(missing)} (has {list(names)})", path)


class NpyReader(EventReader):
    format = "npy"

    def __init__(self, path, **options):
        super().__init__(path, **options)
        try:
            self._arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise EventFormatError(f"not a readable .npy file ({e})", self.path, 0) from None
        if self._arr.ndim != 1:
            raise EventFormatError(f"expected a 1-D structured array, got shape {self._arr.shape}", self.path)
        _check_fields(self._arr.dtype.names, self.path)
        self._data_offset = self._arr.offset if hasattr(self._arr, "offset") else None

    def _event_offset(self, index):
        return None if self._data_offset is None else self._data_offset + index * self._arr.dtype.itemsize

    def _decode(self):
        step = self.chunk_events
        for i in range(0, len(self._arr), step):
            yield as_events(np.asarray(self._arr[i:i + step])).copy()


class NpzReader(EventReader):
    format = "npz"

    def __init__(self, path, **options):
        super().__init__(path, **options)
        try:
            self._z = np.load(self.path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise EventFormatError(f"not a readable .npz file ({e})", self.path, 0) from None
        files = set(self._z.files)
        if "events" in files:
            self._mode = "struct"
        else:
            _check_fields(sorted(files), self.path)
            self._mode = "fields"
        w = int(self._z["width"]) if "width" in files else None
        h = int(self._z["height"]) if "height" in files else None
        self._set_geometry(w, h, "npz file")

    def _decode(self):
        if self._mode == "struct":
            arr = self._z["events"]
            _check_fields(arr.dtype.names, self.path)
            yield as_events(arr).copy()
            return
        cols = {k: self._z[k] for k in ("x", "y", "t")}
        cols["p"] = self._z[next(k for k in ("p", "polarity", "on") if k in self._z.files)]
        n = len(cols["x"])
        if any(len(v) != n for v in cols.values()):
            raise EventFormatError(f"fields differ in length: { {k: len(v) for k, v in cols.items()} }", self.path)
        ev = empty(n)
        for k, v in cols.items():
            ev[k] = v
        yield ev


class NpyWriter(EventWriter):
    """Writes a structured .npy (EVENT_DTYPE); chunks are buffered until close()."""

    format = "npy"

    def __init__(self, path, **options):
        super().__init__(path, **options)
        self._chunks = []

    def _write(self, ev):
        self._chunks.append(np.array(ev, dtype=EVENT_DTYPE, copy=True))

    def _close(self):
        arr = concatenate(self._chunks)  # (np.concatenate would pack the padded dtype)
        with open(self.path, "wb") as f:
            np.save(f, arr, allow_pickle=False)


class NpzWriter(NpyWriter):
    """Writes arrays x, y, p, t (and width, height where known) to a compressed .npz."""

    format = "npz"

    def _close(self):
        arr = concatenate(self._chunks)  # (np.concatenate would pack the padded dtype)
        extra = {}
        if self.width is not None:
            extra["width"] = np.int64(self.width)
        if self.height is not None:
            extra["height"] = np.int64(self.height)
        with open(self.path, "wb") as f:
            np.savez_compressed(f, x=arr["x"], y=arr["y"], p=arr["p"], t=arr["t"], **extra)
