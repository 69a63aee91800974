"""The writer protocol: ``write(events)`` any number of times, then ``close()``.

Writers stream: memory stays bounded by the largest array passed to ``write``.
They never modify the caller's arrays. Use them as context managers; a writer
that exits on an exception still closes its file.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import EventFormatError
from ..events import as_events


class EventWriter:
    format = "?"

    def __init__(self, path, *, width=None, height=None):
        self.path = os.fspath(path)
        self.width = None if width is None else int(width)
        self.height = None if height is None else int(height)
        self.count = 0
        self.closed = False

    def write(self, events: np.ndarray) -> None:
        if self.closed:
            raise ValueError(f"{self.path}: write to a closed writer")
        ev = as_events(events)
        if len(ev) and self.width is not None and self.height is not None:
            bad = (ev["x"] >= self.width) | (ev["y"] >= self.height)
            if bad.any():
                i = int(np.argmax(bad))
                raise EventFormatError(
                    f"event {self.count + i} at ({ev['x'][i]}, {ev['y'][i]}) lies outside the "
                    f"{self.width}x{self.height} geometry", self.path)
        self._write(ev)
        self.count += len(ev)

    def _write(self, ev: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def _close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

