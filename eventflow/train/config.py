"""``eventflow train`` configuration: YAML validated against frozen dataclasses.

Every error names the file and the key path (``optim.lr: expected a number, got 'fast'``).

Example (``configs/gesture-snn.yaml`` is a full one)::

    name: gesture-snn
    data:
      train: {kind: gesture, root: data/gesture-train, make: {n: 990, seed: 1}}   # or a list of splits
      val:   {kind: gesture, root: data/gesture-val, make: {n: 110, seed: 2}}
    input: {sensor_size: [128, 128], input_size: [32, 32], window_us: 10000}
    network: {channels: [16, 32, 64], hidden: [128], neuron: {type: PLIF, init_tau: 2.0}}
    optim: {epochs: 20, lr: 0.001, steps: 30}

``data.<split>.kind`` is ``gesture`` or ``digits`` (simulated folders, made first from ``make``
when missing) or a real dataset a user has on disk: ``nmnist`` (``root`` holding N-MNIST's
``Train/`` and ``Test/``) and ``dvsgesture`` (DVS128 Gesture's ``DvsGesture`` folder; each
labelled gesture a recording from its labelled start). ``data.train`` reads a real dataset's
training part, ``val`` and ``test`` its test part: a checkpoint chosen on ``val`` is then chosen on
the published test set, as much of the literature does; hold out a simulated split or a copy of
part of the training files as ``val`` for an honest test figure.

``network.neuron`` is any spiking layer spec (``LIF``, ``PLIF``, ``DALIF`` (its per-channel decays
sized by each block), ``ALIF``, ...); ``network.batch_norm: true`` puts a BatchNorm after each conv
and hidden linear (trained with batch statistics, folded into the weights on export);
``network.unshuffle: r`` puts a pixel-unshuffle (space to depth) stem before the first conv, so a
conv at 1 / r of ``input.input_size`` still sees every input pixel (r must divide the input size);
``network.stack: k`` puts a ``StepStack`` stem first: the first conv sees the last k windows side
by side in channels (how the events moved over them), its past kept with the membranes;
``optim.rest_weight`` pulls the outputs of the unlabelled steps (the subject at rest) towards an
undecided output (``loop.rest_loss``); ``optim.onset_crops`` (0..1) is the share of training
crops made to start at or before the gesture's first labelled window, as a stream sees it
(``data.batches``); ``optim.tail_steps`` lets crops run that many steps past the labelled end, into
the rest after the gesture (with ``rest_weight``, pulled towards undecided there too);
``optim.onset_weight`` makes the first ``optim.onset_steps`` labelled steps of a gesture weigh
``1 + onset_weight`` in the TET loss (the windows where a stream must decide); ``optim.shift``, ``scale``, ``rotate``, ``drop`` and ``noise`` augment each training crop (``eventflow.train.augment``: translation, zoom, rotation, thinning of
the events, noise events; all off by default). Only nets of LIF / PLIF / DALIF neurons run on the sparse
kernels after export.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..model import DecisionSpec, InputSpec
from ..schema import check_count, check_number, from_mapping
from ..snn.layers import PixelUnshuffle, StepStack
from .loop import OptimConfig

__all__ = ["DataConfig", "NetConfig", "SplitConfig", "TeacherConfig", "TrainConfig", "load_config"]

KINDS = ("gesture", "digits", "nmnist", "dvsgesture")
#: widest conv (channels) or linear (units) layer a config may ask for
MAX_WIDTH = 65536
#: keys of data.<split>.make (arguments of eventflow.datasets.make_dataset)
MAKE_KEYS = ("n", "seed", "seconds", "jobs", "vary", "sensor", "ext")


@dataclass(frozen=True)
class SplitConfig:
    kind: str
    root: str
    make: dict | None = None      # MAKE_KEYS (n, seed[, ...]): simulate the split when root is missing
    limit: int | None = None      # use only the first `limit` recordings


@dataclass(frozen=True)
class DataConfig:
    train: SplitConfig | tuple[SplitConfig, ...]   # one split, or a list of splits trained on together
    val: SplitConfig | tuple[SplitConfig, ...]
    test: SplitConfig | None = None
    seconds: float | None = None   # encode this long from each recording's start (default: each split's longest)

    def splits(self, name: str) -> tuple[SplitConfig, ...]:
        """The splits of ``train``, ``val`` or ``test`` as a tuple (empty when absent)."""
        return tuple(s for _, s in self.keyed_splits(name))

    def keyed_splits(self, name: str) -> tuple[tuple[str, SplitConfig], ...]:
        """``(key, split)`` pairs of ``train``, ``val`` or ``test``: the key names the split in
        messages (``data.train`` for one split, ``data.train[1]`` in a list)."""
        s = getattr(self, name)
        if s is None:
            return ()
        if isinstance(s, (tuple, list)):
            return tuple((f"data.{name}[{i}]", x) for i, x in enumerate(s))
        return ((f"data.{name}", s),)


@dataclass(frozen=True)
class NetConfig:
    channels: tuple[int, ...] = (16, 32, 64)
    hidden: tuple[int, ...] = (128,)
    neuron: dict = field(default_factory=lambda: {"type": "PLIF", "init_tau": 2.0})
    batch_norm: bool = False   # a BatchNorm after each conv and hidden linear (folded away on export)
    unshuffle: int = 1         # r > 1: each r x r input patch moved into channels before the first conv
    stack: int = 1             # k > 1: the last k steps' inputs side by side in channels before the first conv


@dataclass(frozen=True)
class TeacherConfig:
    epochs: int = 5
    lr: float = 1e-3
    channels: tuple[int, ...] = (32, 64, 128)   # (checked in load_config with the network's widths)

    MAX_EPOCHS = 10_000

    def __post_init__(self):
        check_count(self.epochs, "teacher.epochs", self.MAX_EPOCHS)
        check_number(self.lr, "teacher.lr", 0, math.inf)


@dataclass(frozen=True)
class TrainConfig:
    name: str
    data: DataConfig
    input: InputSpec
    network: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()
    decision: DecisionSpec = DecisionSpec()
    teacher: TeacherConfig | None = None
    classes: tuple[str, ...] | None = None
    init_rate: float = 0.1          # data-driven init: each spiking layer starts firing near this rate
    seed: int = 0
    threads: int = 2
    device: str = "auto"            # auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda, cuda:N
    out: str = "runs"
    path: str | None = None         # the config file this came from (relative paths are relative to it)

    def resolve(self, p: str) -> str:
        """``p`` relative to the config file's folder (absolute paths unchanged)."""
        if os.path.isabs(p) or self.path is None:
            return p
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.path)), p))


def load_config(path: str) -> TrainConfig:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            d = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({e})") from None
    if d is not None and not isinstance(d, dict):
        raise ValueError(f"{path}: expected a mapping of keys at the top, got {type(d).__name__}")
    cfg = from_mapping(TrainConfig, {**(d or {}), "path": os.path.abspath(path)}, path)
    widths = [("network.channels", cfg.network.channels), ("network.hidden", cfg.network.hidden)]
    if cfg.teacher is not None:
        widths.append(("teacher.channels", cfg.teacher.channels))
    for key, values in widths:
        if (key == "teacher.channels" and not values) or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_WIDTH for v in values):
            raise ValueError(f"{path}: {key}: expected whole numbers in 1..{MAX_WIDTH}, got {list(values)}")
    r, r_max = cfg.network.unshuffle, PixelUnshuffle.MAX_FACTOR
    if not (isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= r_max):
        raise ValueError(f"{path}: network.unshuffle: expected a whole number in 1..{r_max}, got {r!r}")
    if any(n % r for n in cfg.input.input_size):
        raise ValueError(f"{path}: network.unshuffle: {r} does not divide input.input_size {list(cfg.input.input_size)}")
    k, k_max = cfg.network.stack, StepStack.MAX_STEPS
    if not (isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= k_max):
        raise ValueError(f"{path}: network.stack: expected a whole number in 1..{k_max}, got {k!r}")
    if cfg.threads < 1:
        raise ValueError(f"{path}: threads: expected at least 1, got {cfg.threads}")
    if not cfg.name or cfg.name in (".", "..") or "/" in cfg.name or "\\" in cfg.name:
        raise ValueError(f"{path}: name: expected a folder name (no '/'), got {cfg.name!r}")   # (out/NAME/ is written)
    if cfg.optim.kd_alpha and cfg.teacher is None:
        raise ValueError(f"{path}: optim.kd_alpha: {cfg.optim.kd_alpha} distils from a teacher, but the config "
                         f"has no 'teacher:' section")
    try:
        check_number(cfg.init_rate, "init_rate", 0, 1)
        if cfg.data.seconds is not None:
            check_number(cfg.data.seconds, "data.seconds", 0, math.inf)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if not (cfg.device in ("auto", "cpu", "cuda") or (cfg.device.startswith("cuda:") and cfg.device[5:].isdigit())):
        raise ValueError(f"{path}: device: expected auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    for split in ("train", "val", "test"):
        if getattr(cfg.data, split) == ():
            raise ValueError(f"{path}: data.{split}: expected at least one split, got an empty list")
        for key, s in cfg.data.keyed_splits(split):
            if s.kind not in KINDS:
                raise ValueError(f"{path}: {key}.kind: expected one of {', '.join(KINDS)}, got {s.kind!r}")
            unknown = sorted(set(s.make or {}) - set(MAKE_KEYS))
            if unknown:
                raise ValueError(f"{path}: {key}.make: unknown key(s) {', '.join(map(str, unknown))}; "
                                 f"known: {', '.join(MAKE_KEYS)}")
            if s.make and "vary" in s.make:
                from ..sim.sensor import check_ranges

                try:
                    check_ranges(s.make["vary"])
                except ValueError as e:
                    raise ValueError(f"{path}: {key}.make.vary: {e}") from None
    spec, o = cfg.input, cfg.optim
    whole_clip = spec.clip is None or (spec.clip >= 1 and spec.clip % 1 == 0)
    whole = spec.encoding == "binary" or (spec.scale == 1 and whole_clip)
    if (o.drop or o.noise) and not whole:
        raise ValueError(f"{path}: optim.drop and optim.noise thin and add whole events, but input.scale "
                         f"{spec.scale} and input.clip {spec.clip} do not give whole counts "
                         "(use scale 1 and a whole clip)")
    return cfg
