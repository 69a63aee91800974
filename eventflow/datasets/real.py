"""Loaders for real datasets a user already has on disk, in their published layouts.

    DVSGesture(root, train=True)   DvsGesture/userNN_<lighting>.aedat (AEDAT 3.1) with
        userNN_<lighting>_labels.csv beside each, and trials_to_train.txt / trials_to_test.txt.
        One sample per labelled gesture: the trial's events with t_start <= t < t_end (times kept
        as recorded; with ``from_start=True`` counted from t_start, so that each sample is a
        recording starting at its gesture, as the simulated datasets' are), target = class id - 1
        (0..10); ``interval(i)`` is (t_start, t_end) on the samples' clock.
    NMNIST(root, train=True)       Train/<digit>/*.bin or Test/<digit>/*.bin; target = the digit.
    NMNIST.from_list(folder, list_file)   a folder of .bin/.bs2 files named by sample number and a
        ``sample class`` list (slayerPytorch's NMNISTsmall layout).
    Gen1(root, split="train")      <split>/*_td.dat (304x240 DAT) with *_bbox.npy beside each;
        target = the boxes array as stored (Gen1: ts, x, y, w, h, class_id, confidence, track_id).

``root`` may be the dataset folder itself or the folder that holds it (``DvsGesture``,
``detection_dataset_duration_60s_ratio_1.0``). Items are ``(events, target)`` with EVENT_DTYPE
events (p = 1 for ON); ``transform`` / ``target_transform`` are applied as in tonic, and
``dataset.targets`` lists every target without reading events.

>>> ds = DVSGesture("/data/DVSGesture", train=False)     # doctest: +SKIP
>>> events, target = ds[0]; ds.sensor_size, target      # doctest: +SKIP
((128, 128, 2), 0)
"""
from __future__ import annotations

import os
import re

import numpy as np

from .base import EventDataset
from .manifest import DETECTION_CLASSES, DIGIT_CLASSES, GESTURE_CLASSES

__all__ = ["DVSGesture", "Gen1", "NMNIST"]

GEN1_SIZE = (304, 240)
DVS128_SIZE = (128, 128)
_BOX_FIELDS = ("x", "y", "w", "h", "class_id")


class _Loader(EventDataset):
    """Real datasets: subclasses fill ``self._targets`` and implement ``events(i)``."""

    sensor_size: tuple = ()

    def __init__(self, transform=None, target_transform=None):
        super().__init__(transform, target_transform)
        self._targets: list = []

    def __len__(self) -> int:
        return len(self._targets)

    def target(self, index: int):
        """The target of sample ``index`` (before ``target_transform``); reads no events."""
        return self._targets[self._index(index)]


def _dataset_folder(root, name: str, marker) -> str:
    """``root`` if it looks like the dataset (``marker(path)``), else ``root/name`` if that does."""
    root = os.fspath(root)
    for cand in (root, os.path.join(root, name)):
        if os.path.isdir(cand) and marker(cand):
            return cand
    raise OSError(f"{root}: not a {name} folder (nor does it hold one)")


def _numbered(name: str):
    """Sort key: numbers inside a name compare as numbers (user2 < user10)."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name)]


class DVSGesture(_Loader):
    """DVS128 Gesture, one sample per labelled gesture (see the module docstring)."""

    sensor_size = (*DVS128_SIZE, 2)
    classes = GESTURE_CLASSES

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, from_start: bool = False):
        from ..formats.aedat import labels_path, read_gesture_labels

        super().__init__(transform, target_transform)
        self.from_start = bool(from_start)
        list_name = "trials_to_train.txt" if train else "trials_to_test.txt"
        self.root = _dataset_folder(root, "DvsGesture", lambda p: os.path.isfile(os.path.join(p, list_name)))
        list_path = os.path.join(self.root, list_name)
        #: one row per sample: (trial file, class id 1..11, t_start, t_end)
        self.samples: list[tuple[str, int, int, int]] = []
        with open(list_path, "rb") as f:
            for number, line in enumerate(f, 1):
                trial = line.decode("latin-1").strip()
                if not trial:
                    continue
                path = os.path.join(self.root, trial)
                if not os.path.isfile(path):
                    raise OSError(f"{list_path}: line {number} names {trial!r}, which is not in {self.root}")
                labels_csv = labels_path(path)
                if not os.path.isfile(labels_csv):
                    raise OSError(f"{labels_csv}: labels file missing for {trial!r} (listed in {list_path})")
                for row in read_gesture_labels(labels_csv):
                    cls = int(row["class"])
                    if not 1 <= cls <= 11:
                        raise ValueError(f"{labels_csv}: class {cls} is not a DVS128 Gesture class (1..11)")
                    self.samples.append((path, cls, int(row["t_start"]), int(row["t_end"])))
        self._targets = [cls - 1 for _, cls, _, _ in self.samples]

    def events(self, index: int) -> np.ndarray:
        """The events of gesture ``index``: its trial's events with t_start <= t < t_end."""
        from ..formats.aedat import Aedat3Reader

        path, _, t0, t1 = self.samples[self._index(index)]
        ev = Aedat3Reader(path).read_time(t0, t1)
        if self.from_start:
            ev["t"] -= t0   # (a new array, read just now; t >= t0, so no unsigned wrap)
        return ev

    def interval(self, index: int) -> tuple[int, int]:
        """The labelled gesture's ``(t_start, t_end)`` in us, on the clock ``events`` uses:
        the trial's, or from the gesture's start (``(0, t_end - t_start)``) with ``from_start``."""
        _, _, t0, t1 = self.samples[self._index(index)]
        return (0, t1 - t0) if self.from_start else (t0, t1)


class NMNIST(_Loader):
    """N-MNIST samples, 34x34, one file each (see the module docstring)."""

    sensor_size = (34, 34, 2)
    classes = DIGIT_CLASSES

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        super().__init__(transform, target_transform)
        split = "Train" if train else "Test"
        self.root = _dataset_folder(root, "NMNIST", lambda p: os.path.isdir(os.path.join(p, split)))
        base = os.path.join(self.root, split)
        pairs = []
        for digit in range(10):
            folder = os.path.join(base, str(digit))
            if not os.path.isdir(folder):
                raise OSError(f"{base}: no folder '{digit}' (N-MNIST keeps each class in <split>/<digit>/)")
            names = sorted((n for n in os.listdir(folder) if n.endswith((".bin", ".bs2"))), key=_numbered)
            pairs += [(os.path.join(folder, n), digit) for n in names]
        self._set_files(pairs)

    def _set_files(self, pairs) -> None:
        self.files = [p for p, _ in pairs]
        self._targets = [c for _, c in pairs]

    @classmethod
    def from_list(cls, folder, list_file, transform=None, target_transform=None) -> "NMNIST":
        """Samples ``folder/<sample>.bin`` (or ``.bs2``) with the classes of a ``sample class`` list,
        in the list's order.

        >>> ds = NMNIST.from_list("NMNISTsmall", "NMNISTsmall/test100.txt")   # doctest: +SKIP
        """
        from ..formats.nmnist import read_nmnist_labels

        folder = os.fspath(folder)
        rows = read_nmnist_labels(list_file)
        pairs = []
        for number, (sample, digit) in enumerate(rows.tolist(), 1):
            found = [p for p in (os.path.join(folder, f"{sample}{e}") for e in (".bin", ".bs2")) if os.path.isfile(p)]
            if not found:
                raise OSError(f"{list_file}: sample {sample} (entry {number}) has no {sample}.bin or {sample}.bs2 "
                              f"in {folder}")
            if not 0 <= digit <= 9:
                raise ValueError(f"{list_file}: sample {sample} has class {digit}, not a digit")
            pairs.append((found[0], int(digit)))
        ds = cls.__new__(cls)
        _Loader.__init__(ds, transform, target_transform)
        ds.root = folder
        ds._set_files(pairs)
        return ds

    def events(self, index: int) -> np.ndarray:
        from ..formats.nmnist import NmnistReader

        return NmnistReader(self.files[self._index(index)]).read_all()


class Gen1(_Loader):
    """Prophesee Gen1 automotive detection: events and boxes of each recording (see the module docstring)."""

    sensor_size = (*GEN1_SIZE, 2)
    classes = DETECTION_CLASSES
    SPLITS = ("train", "val", "test")

    def __init__(self, root, split: str = "train", transform=None, target_transform=None):
        super().__init__(transform, target_transform)
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {self.SPLITS}, got {split!r}")
        self.root = _dataset_folder(root, "detection_dataset_duration_60s_ratio_1.0",
                                    lambda p: os.path.isdir(os.path.join(p, split)))
        folder = os.path.join(self.root, split)
        self.files, self.box_files = [], []
        for name in sorted(os.listdir(folder), key=_numbered):
            if name.endswith("_td.dat"):
                boxes = os.path.join(folder, name[:-len("_td.dat")] + "_bbox.npy")
                if not os.path.isfile(boxes):
                    raise OSError(f"{boxes}: boxes missing for {name}")
                self.files.append(os.path.join(folder, name))
                self.box_files.append(boxes)
        if not self.files:
            raise OSError(f"{folder}: no *_td.dat recordings")
        self._targets = [None] * len(self.files)  # boxes load on demand (``boxes(i)``, ``targets``)

    def target(self, index: int) -> np.ndarray:
        return self.boxes(index)

    def boxes(self, index: int) -> np.ndarray:
        """The boxes array of recording ``index``, as stored (t or ts, x, y, w, h, class_id, ...)."""
        path = self.box_files[self._index(index)]
        boxes = np.load(path, allow_pickle=False)
        names = boxes.dtype.names or ()
        missing = [k for k in _BOX_FIELDS if k not in names] + ([] if {"t", "ts"} & set(names) else ["ts"])
        if missing:
            raise ValueError(f"{path}: boxes lack fields {missing} (have {list(names)})")
        return boxes

    def events(self, index: int) -> np.ndarray:
        from ..formats.dat import DatReader

        return DatReader(self.files[self._index(index)], width=GEN1_SIZE[0], height=GEN1_SIZE[1]).read_all()
