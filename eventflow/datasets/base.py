"""What every eventflow dataset shares: PyTorch's map-style protocol over ``events(i)`` and
``target(i)``, with tonic-style ``transform`` / ``target_transform`` callables.

A subclass implements ``__len__``, ``events(i)`` (raw events, no transform) and ``target(i)``
(reads no events); ``self._index(i)`` turns a possibly negative index into a checked one.
"""
from __future__ import annotations

__all__ = ["EventDataset"]


class EventDataset:
    def __init__(self, transform=None, target_transform=None):
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        raise NotImplementedError

    def events(self, index: int):
        raise NotImplementedError

    def target(self, index: int):
        raise NotImplementedError

    def _where(self) -> str:
        """Where the samples come from, for error messages."""
        return ""

    def _index(self, index) -> int:
        i, n = int(index), len(self)
        i = i + n if i < 0 else i
        if not 0 <= i < n:
            raise IndexError(f"sample {index} out of range for {n} samples{self._where()}")
        return i

    @property
    def targets(self) -> list:
        """Every sample's target (before ``target_transform``), without reading events."""
        return [self.target(i) for i in range(len(self))]

    def __getitem__(self, index):
        i = self._index(index)
        events, target = self.events(i), self.target(i)
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target
