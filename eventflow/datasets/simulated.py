"""PyTorch-style datasets over the splits ``eventflow dataset make`` writes (layout: ``manifest``).

Each item is ``(events, target)``: events are an EVENT_DTYPE array (x, y, p, t in microseconds,
p = 1 for ON), then ``transform(events)`` if given (any callable on the array, e.g. a tonic
transform such as ``tonic.transforms.ToFrame(sensor_size=ds.sensor_size, time_window=10_000)``);
the target goes through ``target_transform``. Nothing here imports torch.

    SimGesture   target: class index 0..10 (DVS128 Gesture id - 1); ``ground_truth(i)``: the
                 labels array (class, t_start, t_end in us) of ``_labels.csv``
    SimDigits    target: the digit 0..9; ``ground_truth(i)``: the digit in ``_label.txt``
    SimDetection target: Gen1 boxes (structured array ts, x, y, w, h, class_id, confidence,
                 track_id) from ``_bbox.npy``
    SimFlow      target: dict of arrays t0_us, t1_us (N windows), flow (N, 2, H, W) float32 and
                 window_us, from ``_flow.h5``; ``targets`` gives the file paths instead

``dataset.targets`` gives every target without reading any events.

>>> ds = SimDigits("/data/digits_train")                        # doctest: +SKIP
>>> events, digit = ds[3]; len(ds), ds.sensor_size, digit       # doctest: +SKIP
(20, (34, 34, 2), 3)
"""
from __future__ import annotations

import os

import numpy as np

from .base import EventDataset
from .manifest import read_manifest

__all__ = ["SimDataset", "SimDetection", "SimDigits", "SimFlow", "SimGesture", "open_sim_dataset"]


class SimDataset(EventDataset):
    """Any split made by ``eventflow dataset make``: events plus the manifest's target (or, where the
    manifest has none, the list of ground-truth paths)."""

    scene = None  # subclasses name the scene their split must hold

    def __init__(self, root, transform=None, target_transform=None):
        self.root = os.fspath(root)
        self.manifest = read_manifest(self.root)
        if self.scene is not None and self.manifest.name != self.scene:
            raise ValueError(f"{os.path.join(self.root, 'manifest.json')}: holds a {self.manifest.name!r} split, "
                             f"not {self.scene!r} (use SimDataset or open_sim_dataset for any split)")
        super().__init__(transform, target_transform)

    # -- geometry and classes ------------------------------------------------------
    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """(width, height, 2), as tonic's transforms take it."""
        return (self.manifest.width, self.manifest.height, 2)

    @property
    def classes(self) -> tuple:
        return self.manifest.classes

    # -- samples ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.manifest.samples)

    def _where(self) -> str:
        return f" in {self.root}"

    def _entry(self, index: int):
        return self.manifest.samples[self._index(index)]

    def path(self, index: int) -> str:
        """The event file of sample ``index``."""
        return os.path.join(self.root, self._entry(index).file)

    def ground_truth_paths(self, index: int) -> list[str]:
        return [os.path.join(self.root, g) for g in self._entry(index).ground_truth]

    def _ground_truth_file(self, index: int, suffix: str) -> str:
        found = [p for p in self.ground_truth_paths(index) if p.endswith(suffix)]
        if not found:
            raise ValueError(f"{self.root}: sample {index} lists no '*{suffix}' ground-truth file "
                             f"(has {list(self._entry(index).ground_truth)})")
        return found[0]

    def events(self, index: int) -> np.ndarray:
        """The raw events of sample ``index`` (no transform)."""
        from .. import open_events

        return open_events(self.path(index)).read_all()

    def target(self, index: int):
        """The target of sample ``index``, before ``target_transform``; reads no events."""
        entry = self._entry(index)
        return entry.target if entry.target is not None else self.ground_truth_paths(index)

    def ground_truth(self, index: int):
        """The sample's ground-truth file paths (subclasses read them)."""
        return self.ground_truth_paths(index)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.root!r}: {len(self)} {self.manifest.name} samples, "
                f"{self.manifest.width}x{self.manifest.height})")


class SimGesture(SimDataset):
    scene = "gesture"

    def ground_truth(self, index: int) -> np.ndarray:
        """The gestures of sample ``index``: structured array (class 1..11, t_start, t_end in us)."""
        from ..formats.aedat import read_gesture_labels

        return read_gesture_labels(self._ground_truth_file(index, "_labels.csv"))


class SimDigits(SimDataset):
    scene = "digits"

    def ground_truth(self, index: int) -> int:
        """The digit written in the sample's ``_label.txt``."""
        path = self._ground_truth_file(index, "_label.txt")
        with open(path) as f:
            text = f.read().strip()
        if not text.isdigit():
            raise ValueError(f"{path}: expected one digit, got {text[:20]!r}")
        return int(text)


class SimDetection(SimDataset):
    scene = "detection"

    def target(self, index: int) -> np.ndarray:
        return self.ground_truth(index)

    def ground_truth(self, index: int) -> np.ndarray:
        """Gen1 boxes of sample ``index`` (see ``eventflow.sim.scenes.detection``)."""
        return np.load(self._ground_truth_file(index, "_bbox.npy"), allow_pickle=False)


class SimFlow(SimDataset):
    scene = "flow"

    def target(self, index: int) -> dict:
        return self.ground_truth(index)

    @property
    def targets(self) -> list[str]:
        """The ``_flow.h5`` path of every sample (the arrays are too large to load all at once)."""
        return [self._ground_truth_file(i, "_flow.h5") for i in range(len(self))]

    def ground_truth(self, index: int) -> dict:
        """Dense forward flow of sample ``index``: t0_us, t1_us (N,), flow (N, 2, H, W) float32,
        occluded (N, H, W) uint8 (1 where the point seen at t0 is hidden or out of the image at
        t1; ``None`` in a file without it) and window_us (``None`` if the file lacks it)."""
        import h5py

        path = self._ground_truth_file(index, "_flow.h5")
        with h5py.File(path, "r") as f:
            missing = [k for k in ("t0_us", "t1_us", "flow") if k not in f]
            if missing:
                raise ValueError(f"{path}: missing datasets {missing}")
            out = {k: f[k][()] for k in ("t0_us", "t1_us", "flow")}
            out["occluded"] = f["occluded"][()] if "occluded" in f else None
            out["window_us"] = int(f.attrs["window_us"]) if "window_us" in f.attrs else None
        flow = out["flow"]
        if out["occluded"] is not None and out["occluded"].shape != flow.shape[:1] + flow.shape[2:]:
            raise ValueError(f"{path}: occluded has shape {out['occluded'].shape}, flow {flow.shape} "
                             "(expected (N, H, W) beside (N, 2, H, W))")
        return out


_BY_SCENE = {c.scene: c for c in (SimGesture, SimDigits, SimDetection, SimFlow)}


def open_sim_dataset(root, transform=None, target_transform=None) -> SimDataset:
    """The dataset class that fits the split in ``root`` (by its manifest's name)."""
    name = read_manifest(root).name
    return _BY_SCENE.get(name, SimDataset)(root, transform=transform, target_transform=target_transform)
