"""Datasets to training tensors: every recording encoded once by the model's ``InputSpec``.

``encode_dataset(ds, spec)`` turns a dataset (``ds[i] -> (events, target)``, ``len(ds)``) into
an ``EncodedSet``: inputs ``x [N, S, 2, h, w]`` (float16, S steps of ``spec.window_us`` from
time 0 of each recording), targets, and for each recording the steps that carry its label
(``[first, end)``: the gesture's interval when the dataset has labels with times, else all).
``concat`` joins sets of different lengths (recordings of 1.2 s and of 2 s), padding the
shorter with empty steps that each recording's ``length`` excludes.
``batches`` yields random crops of T steps for truncated BPTT, with a mask of the labelled steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..model import InputSpec
from ..progress import terminal_bar

__all__ = ["EncodedSet", "Limited", "batches", "concat", "encode_dataset", "label_steps", "recording_name"]


@dataclass(frozen=True)
class EncodedSet:
    x: torch.Tensor          # [N, S, 2, h, w] float16
    y: torch.Tensor          # [N] int64
    first: torch.Tensor      # [N] int64: first labelled step
    end: torch.Tensor        # [N] int64: one past the last labelled step
    length: torch.Tensor | None = None   # [N] int64: steps of each recording (None: all S)

    def __len__(self):
        return len(self.y)

    def label_mask(self) -> torch.Tensor:
        """``[N, S]`` bool: each recording's labelled steps ``[first, end)``."""
        t = torch.arange(self.x.shape[1])[None, :]
        return (t >= self.first[:, None]) & (t < self.end[:, None])

    def subset(self, idx) -> "EncodedSet":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return EncodedSet(self.x[idx], self.y[idx], self.first[idx], self.end[idx],
                          None if self.length is None else self.length[idx])

    def lengths(self) -> torch.Tensor:
        """``[N]`` int64: the steps each recording holds (the rest of its row is padding)."""
        return torch.full((len(self.y),), self.x.shape[1]) if self.length is None else self.length


def concat(sets) -> EncodedSet:
    """One set of all recordings of ``sets`` (in order); shorter recordings are padded with empty
    steps after their end, which ``length`` marks as outside the recording."""
    sets = list(sets)
    if not sets:
        raise ValueError("concat: no sets")
    if len(sets) == 1:
        return sets[0]
    S = max(s.x.shape[1] for s in sets)
    x = torch.zeros((sum(len(s) for s in sets), S, *sets[0].x.shape[2:]), dtype=sets[0].x.dtype)
    at = 0
    for s in sets:
        if s.x.shape[2:] != sets[0].x.shape[2:]:
            raise ValueError(f"concat: step shapes differ ({tuple(s.x.shape[2:])} vs {tuple(sets[0].x.shape[2:])})")
        x[at:at + len(s), :s.x.shape[1]] = s.x
        at += len(s)
    cat = lambda name: torch.cat([getattr(s, name) for s in sets])   # noqa: E731
    return EncodedSet(x, cat("y"), cat("first"), cat("end"), torch.cat([s.lengths() for s in sets]))


def label_steps(interval_us, window_us: int, n_steps: int) -> tuple[int, int]:
    """Steps ``[first, end)`` lying in the labelled interval ``(start_us, end_us)``; all steps if None."""
    if interval_us is None:
        return 0, n_steps
    start, stop = interval_us
    first = min(n_steps, max(0, math.ceil(start / window_us)))
    end = min(n_steps, max(first, stop // window_us))
    return first, end


#: the most bytes an encoded set may take (float16 steps): the steps come from the recordings' last
#: timestamps, read from files, so a corrupt or far-off timestamp is refused here, not allocated
MAX_ENCODED_BYTES = 8 << 30


def recording_name(ds, i: int) -> str:
    """``recording i`` of ``ds`` for messages, with its file where the dataset knows it."""
    if hasattr(ds, "path"):
        return f"recording {i} ({ds.path(i)})"
    files = getattr(ds, "files", None)
    return f"recording {i} ({files[i]})" if files is not None else f"recording {i}"


def encode_dataset(ds, spec: InputSpec, seconds: float | None = None, interval=None, desc="encode") -> EncodedSet:
    """Encode every recording of ``ds`` from time 0 for ``seconds`` (default: the longest one).

    ``interval(i) -> (start_us, end_us) | None`` gives the labelled interval of recording i.
    A set that would take more than ``MAX_ENCODED_BYTES`` is refused, naming its longest recording.
    """
    n = len(ds)
    if n == 0:
        raise ValueError("the dataset is empty")
    items = []
    bar = terminal_bar(n, desc, "rec")
    t_max, longest = 0, 0
    for i in range(n):
        ev, target = ds[i]
        items.append((ev, int(target)))
        if len(ev) and int(ev["t"][-1]) > t_max:
            t_max, longest = int(ev["t"][-1]), i
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    n_steps = math.ceil((seconds * 1e6 if seconds else t_max + 1) / spec.window_us)
    size = n * n_steps * math.prod(spec.shape) * 2
    if size > MAX_ENCODED_BYTES:
        why = (f"data.seconds {seconds}" if seconds else
               f"{recording_name(ds, longest)} ends at t = {t_max} us")
        raise ValueError(f"{why}: {n_steps} windows of {spec.window_us} us for each of {n} recordings would take "
                         f"{size / 2**30:.1f} GiB encoded (at most {MAX_ENCODED_BYTES / 2**30:.0f}); set data.seconds, "
                         f"or check that recording's timestamps")
    x = torch.empty((n, n_steps, *spec.shape), dtype=torch.float16)
    y = torch.empty(n, dtype=torch.long)
    first = torch.empty(n, dtype=torch.long)
    end = torch.empty(n, dtype=torch.long)
    for i, (ev, target) in enumerate(items):
        x[i] = torch.from_numpy(spec.encode(ev, 0, n_steps))
        y[i] = target
        first[i], end[i] = label_steps(interval(i) if interval else None, spec.window_us, n_steps)
    return EncodedSet(x, y, first, end)


def batches(data: EncodedSet, batch_size: int, steps: int, generator: torch.Generator, lead_in: int = 0,
            shuffle: bool = True, rest: bool = False, onset: float = 0.0, tail: int = 0, early_steps: int = 0):
    """Random crops of ``steps`` steps: yields ``(x [T, B, 2, h, w] float32, y [B], mask [T, B] bool)``,
    and with ``rest`` a fourth item, ``[T, B] bool``: the crop's unlabelled steps inside the
    recording (the subject at rest, before or after the gesture).

    A crop starts anywhere from ``lead_in`` steps before a recording's labelled interval to
    ``steps`` before its end, or ``steps - tail`` before it (then it may run ``tail`` steps into the
    rest after the gesture) (so the network learns to recognise from rest); ``mask`` marks the
    labelled steps. With ``onset`` > 0, that share of the crops (drawn per crop; the others may
    start before it too) starts no later than the labelled interval's first step (the first
    whole window after the onset), so that the crop holds the onset seen from rest, as a stream
    does (the recognition delay after an onset is what these crops train). On a dataset without
    labelled times every recording's interval starts at step 0, so those crops all start there.
    Without shuffle, crops start at the labelled interval (evaluation). With ``early_steps`` > 0
    (and ``rest``), a fifth item, ``[T, B] bool``: the labelled steps among the first
    ``early_steps`` of the labelled interval (the gesture's onset, where a stream must decide).
    """
    if early_steps and not rest:
        raise ValueError("batches: early_steps needs rest=True (the early steps come as the fifth item)")
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    S, lengths = data.x.shape[1], data.lengths()
    for b in range(0, n, batch_size):
        idx = order[b:b + batch_size]
        lo = (data.first[idx] - lead_in).clamp(min=0)
        hi = (data.end[idx] - steps + tail).clamp(min=0)
        hi = torch.maximum(hi, lo)
        if shuffle and onset:   # (no draw without it: the crops of onset=0 stay as they were)
            early = torch.rand(len(idx), generator=generator) < onset
            hi = torch.where(early, torch.minimum(hi, torch.maximum(data.first[idx], lo)), hi)
        if shuffle:
            start = lo + (torch.rand(len(idx), generator=generator) * (hi - lo + 1).float()).long().clamp(max=hi - lo)
        else:
            start = data.first[idx]
        start = torch.minimum(start, (lengths[idx] - steps).clamp(min=0))   # (within its own recording)
        t = start[:, None] + torch.arange(steps)[None, :]                      # [B, T]
        x = data.x[idx[:, None], t.clamp(max=S - 1)].float().transpose(0, 1)   # [T, B, ...]
        inside = t < lengths[idx, None]
        labelled = (t >= data.first[idx, None]) & (t < data.end[idx, None]) & inside
        if rest and early_steps:
            early = labelled & (t < data.first[idx, None] + early_steps)
            yield (x.contiguous(), data.y[idx], labelled.transpose(0, 1), (inside & ~labelled).transpose(0, 1),
                   early.transpose(0, 1))
        elif rest:
            yield x.contiguous(), data.y[idx], labelled.transpose(0, 1), (inside & ~labelled).transpose(0, 1)
        else:
            yield x.contiguous(), data.y[idx], labelled.transpose(0, 1)


class Limited:
    """The first ``n`` recordings of a dataset."""

    def __init__(self, ds, n):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"limit: expected at least 1 recording, got {n!r}")
        self.ds, self.n = ds, min(n, len(ds))

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.ds[i]
