"""Datasets: simulated splits (made by ``eventflow dataset make``) and loaders for real datasets.

Simulated: ``make_dataset`` writes a split (layout and seed rule: ``eventflow.datasets.manifest``);
``SimGesture``, ``SimDigits``, ``SimDetection``, ``SimFlow`` (or ``SimDataset`` / ``open_sim_dataset``
for any split) read it. Real: ``DVSGesture``, ``NMNIST``, ``Gen1`` read the published layouts.
Every dataset is PyTorch-compatible (``__len__``, ``__getitem__`` -> ``(events, target)``), takes
tonic-style ``transform`` / ``target_transform`` callables, and lists its targets without reading
events (``dataset.targets``). Importing this package imports neither torch nor the simulator.

>>> from eventflow.datasets import make_dataset, SimDigits          # doctest: +SKIP
>>> _ = make_dataset("digits", "/tmp/digits", n=10, seed=0)          # doctest: +SKIP
>>> SimDigits("/tmp/digits").targets                                 # doctest: +SKIP
[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""
from __future__ import annotations

from .make import make_dataset, sample_plan
from .manifest import Manifest, SampleEntry, read_manifest, sample_seed
from .real import NMNIST, DVSGesture, Gen1
from .simulated import SimDataset, SimDetection, SimDigits, SimFlow, SimGesture, open_sim_dataset

__all__ = ["DVSGesture", "Gen1", "Manifest", "NMNIST", "SampleEntry", "SimDataset", "SimDetection", "SimDigits",
           "SimFlow", "SimGesture", "make_dataset", "open_sim_dataset", "read_manifest", "sample_plan",
           "sample_seed"]
