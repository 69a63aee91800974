"""File formats: ``open()`` picks the reader from the file's magic bytes and extension.

Readers: Prophesee RAW (EVT 2.0, EVT 3.0), DAT, Metavision HDF5 (ECF, gzip, lzf or
uncompressed), AEDAT 4 / 3.1 / 2.0, N-MNIST .bin, .npy / .npz.
Writers: Metavision HDF5 (ECF or uncompressed), RAW EVT 3.0, .npz, .npy.
"""
from __future__ import annotations

import importlib
import os

from ..errors import EventFormatError

# format name -> (module, reader class)
READERS = {
    "evt2": ("raw", "Evt2Reader"),
    "evt3": ("raw", "Evt3Reader"),
    "dat": ("dat", "DatReader"),
    "hdf5": ("hdf5", "Hdf5Reader"),
    "aedat4": ("aedat4", "Aedat4Reader"),
    "aedat3": ("aedat", "Aedat3Reader"),
    "aedat2": ("aedat", "Aedat2Reader"),
    "nmnist": ("nmnist", "NmnistReader"),
    "npy": ("numpy_files", "NpyReader"),
    "npz": ("numpy_files", "NpzReader"),
}

# extension -> (module, writer class)
WRITERS = {
    ".hdf5": ("hdf5", "Hdf5Writer"),
    ".h5": ("hdf5", "Hdf5Writer"),
    ".raw": ("raw", "Evt3Writer"),
    ".npz": ("numpy_files", "NpzWriter"),
    ".npy": ("numpy_files", "NpyWriter"),
}

_MAGIC = [
    (b"\x89HDF\r\n\x1a\n", "hdf5"),
    (b"#!AER-DAT4", "aedat4"),
    (b"#!AER-DAT3", "aedat3"),
    (b"#!AER-DAT2", "aedat2"),
    (b"\x93NUMPY", "npy"),
    (b"PK\x03\x04", "npz"),
]
_EXT = {".dat": "dat", ".bin": "nmnist", ".bs2": "nmnist", ".aedat4": "aedat4",
        ".hdf5": "hdf5", ".h5": "hdf5", ".npy": "npy", ".npz": "npz", ".raw": "raw",
        ".aedat": "aedat"}


def _load(module: str, name: str):
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def detect_format(path) -> str:
    """The format name of a file, from its magic bytes, header and extension."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise EventFormatError("no such file" if not os.path.exists(path) else "not a regular file", path)
    with open(path, "rb") as f:
        head = f.read(4096)
    ext = os.path.splitext(path)[1].lower()
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if ext == ".raw" or (head.startswith(b"% ") and ext not in (".dat",)):
        from .raw_header import read_header

        with open(path, "rb") as f:   # the whole header (up to its 1 MiB limit), not just the first bytes
            evt = read_header(f, path).evt
        if evt not in ("evt2", "evt3"):
            said = "no EVT version" if evt is None else f"EVT version {evt!r}"
            raise EventFormatError(f"RAW header gives {said}; readable: EVT 2.0, EVT 3.0 "
                                   "(pass format='evt2' or 'evt3' to force one)", path, 0)
        return evt
    fmt = _EXT.get(ext)
    if fmt is None or fmt in ("aedat", "hdf5", "npy", "npz", "aedat4"):
        # the extension promises a format whose magic bytes are missing, or is unknown
        kind = "unknown extension" if fmt is None else f"not a valid {ext} file (magic bytes missing)"
        raise EventFormatError(f"{kind}; readable: .raw .dat .hdf5 .h5 .aedat4 .aedat .bin .bs2 .npy .npz",
                               path, 0)
    return fmt


def open_events(path, format: str | None = None, **options):
    """Open an event file for streaming reads; see ``EventReader`` for the options.

    >>> r = open_events("recording.raw")            # doctest: +SKIP
    >>> r.format, r.width, r.height                 # doctest: +SKIP
    ('evt3', 1280, 720)
    """
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(READERS)}")
    return _load(*READERS[fmt])(path, **options)


def writer_for(path, format: str | None = None, **options):
    """A streaming writer chosen by the output extension (or ``format``, an extension)."""
    ext = (format if format and format.startswith(".") else f".{format}" if format else
           os.path.splitext(os.fspath(path))[1].lower())
    if ext not in WRITERS:
        raise EventFormatError(f"cannot write {ext or 'files without an extension'}; writable: "
                               + " ".join(sorted(WRITERS)), path)
    return _load(*WRITERS[ext])(path, **options)


def write_events(path, events, *, width=None, height=None, format: str | None = None, **options) -> int:
    """Write events (one array or an iterable of arrays) to ``path``; returns the count."""
    import numpy as np

    chunks = [events] if isinstance(events, np.ndarray) else events
    n = 0
    with writer_for(path, format, width=width, height=height, **options) as w:
        for ev in chunks:
            w.write(ev)
            n += len(ev)
    return n
