"""``.npy`` (a structured array with fields x, y, p, t) and ``.npz`` (arrays x, y, p, t).

An .npz written here also holds ``width`` and ``height`` where known. Reading an
.npy memory-maps it, so memory stays bounded whatever the file size.
"""
from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from ..errors import EventFormatError
from ..events import EVENT_DTYPE, as_events, concatenate, from_fields
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
            try:
                part = np.asarray(self._arr[i:i + step])
                ev = as_events(part)
            except ValueError as e:
                raise EventFormatError(f"events {i}..{min(i + step, len(self._arr)) - 1}: {e}", self.path) from None
            yield ev.copy() if ev is part else ev   # (a converted array is already a fresh copy)


#: Deflate's largest expansion (about 1032 to 1): a member cannot hold more data than this many
#: times its compressed bytes.
_DEFLATE_RATIO = 1032
_MEMBER_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


def _member_header(zf: zipfile.ZipFile, name: str, path, archive_size: int):
    """``(shape, dtype)`` of the .npy member ``name`` from its header alone, checked against the
    bytes the archive holds for it, so that loading it cannot allocate more than the file backs."""
    info = zf.getinfo(name + ".npy")
    try:
        with zf.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                raise ValueError(f".npy format version {version} (this reader: 1.0, 2.0)")
            shape, _, dtype = read[version](f)
            header = f.tell()
    except _MEMBER_ERRORS as e:
        raise EventFormatError(f"member {name!r}: not a readable .npy header ({e})", path, info.header_offset) from None
    if dtype.hasobject:
        raise EventFormatError(f"member {name!r}: object arrays are not events", path, info.header_offset)
    data = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    backed = info.compress_size * (_DEFLATE_RATIO if info.compress_type != zipfile.ZIP_STORED else 1)
    if info.header_offset + info.compress_size > archive_size or data > backed + 4096 or data != info.file_size - header:
        raise EventFormatError(f"member {name!r} claims {shape} of {dtype} ({data} bytes), more than its "
                               f"{info.compress_size} stored bytes can hold", path, info.header_offset)
    return shape, dtype


class NpzReader(EventReader):
    """Reads an .npz of arrays x, y, p, t (or one structured array ``events``), with optional
    scalars ``width`` and ``height``. Each member's .npy header is checked against the bytes the
    archive stores for it before anything is loaded."""

    format = "npz"

    def __init__(self, path, **options):
        super().__init__(path, **options)
        try:
            self._z = np.load(self.path, allow_pickle=False)
            zf = self._z.zip
        except _MEMBER_ERRORS as e:
            raise EventFormatError(f"not a readable .npz file ({e})", self.path, 0) from None
        files = set(self._z.files)
        if "events" in files:
            self._mode = "struct"
        else:
            _check_fields(sorted(files), self.path)
            self._mode = "fields"
        size = os.path.getsize(self.path)
        self._shapes = {k: _member_header(zf, k, self.path, size) for k in sorted(files)}
        self._set_geometry(self._scalar("width"), self._scalar("height"), "npz file")

    def _scalar(self, name):
        if name not in self._shapes:
            return None
        shape, dtype = self._shapes[name]
        if int(np.prod(shape)) != 1 or dtype.kind not in "iu":
            raise EventFormatError(f"member {name!r} should be one integer, got {shape} of {dtype}", self.path)
        return int(self._load(name).reshape(-1)[0])

    def _load(self, name):
        try:
            return self._z[name]
        except _MEMBER_ERRORS as e:
            raise EventFormatError(f"member {name!r} cannot be read ({e})", self.path) from None

    def _decode(self):
        if self._mode == "struct":
            arr = self._load("events")
            _check_fields(arr.dtype.names, self.path)
            try:
                ev = as_events(arr)
            except ValueError as e:
                raise EventFormatError(str(e), self.path) from None
            yield ev.copy() if ev is arr else ev
            return
        cols = {k: self._load(k) for k in ("x", "y", "t")}
        cols["p"] = self._load(next(k for k in ("p", "polarity", "on") if k in self._z.files))
        n = len(cols["x"])
        if any(len(v) != n for v in cols.values()):
            raise EventFormatError(f"fields differ in length: { {k: len(v) for k, v in cols.items()} }", self.path)
        try:
            ev = from_fields(cols["x"], cols["y"], cols["p"], cols["t"])
        except ValueError as e:
            raise EventFormatError(str(e), self.path) from None
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
