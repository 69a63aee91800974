"""eventflow: streaming event-camera inference with spiking neural networks.

>>> import eventflow
>>> reader = eventflow.open(eventflow.sample_path())
>>> reader.format, reader.width, reader.height
('hdf5', 128, 128)
"""
from __future__ import annotations

import os

from .errors import EventFormatError, Violations
from .events import EVENT_DTYPE, TONIC_DTYPE, as_events, empty, from_fields, to_tonic, to_torch
from .formats import detect_format, open_events, write_events, writer_for
from .formats.reader import EventReader

__version__ = "0.1.0"

open = open_events  # noqa: A001  (eventflow.open is the public name)
write = write_events


def sample_path() -> str:
    """Path of the bundled sample recording (a simulated 128x128 gesture, Metavision HDF5)."""
    return os.path.join(os.path.dirname(__file__), "data", "sample_gesture.hdf5")


__all__ = [
    "EVENT_DTYPE", "TONIC_DTYPE", "EventFormatError", "EventReader", "Violations", "as_events",
    "detect_format", "empty", "from_fields", "open", "sample_path", "to_tonic", "to_torch", "write",
    "writer_for",
]
