"""The stages between source and sink: decode, window/encode, model step, head.

Each is a small object with a ``name``, ``step(...)`` (the protocol's ``next``: what it makes
of its input), ``reset(state=None)``, ``get_state()`` and ``shutdown()``. All state is in what
``get_state`` returns; ``reset(get_state())`` on a fresh stage continues exactly.

- ``DecodeStage``: checks EventCD arrays against the geometry; rejects (and counts by reason)
  events out of bounds, with a polarity other than 0/1, or earlier than the running time.
- ``WindowStage``: ``TimeSlicer`` windows of ``input.window_us`` aligned to the stream's first
  event (or ``origin_us``), each encoded by the model's ``InputSpec``. One call emits exactly
  the windows its events complete (a window is complete once an event at or past its end has
  arrived), so a time gap of G us costs G / window_us (empty) windows.
- ``ModelStage``: ``FastNetwork`` (numba) or the torch ``Network``, explicit state for a
  batch of streams.
- ``HeadStage``: classification by the model's ``DecisionSpec``: softmax of the mean logits of
  the last ``smoothing_steps`` windows, committed at ``commit_probability`` (never the
  background class). ``emit="decisions"`` returns a result only when the committed class
  changes or is first reached; ``emit="windows"`` returns every window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..encode.slicing import TimeSlicer, TimeSlicerState
from ..events import concatenate, empty

__all__ = ["DecodeStage", "HeadStage", "ModelStage", "WindowStage", "Windows"]


def _add(counts: dict, reason: str, n: int):
    if n:
        counts[reason] = counts.get(reason, 0) + int(n)


class DecodeStage:
    """Validated events from a source's arrays; ``rejected`` counts the others by reason."""

    name = "decode"

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)
        self.reset()

    def step(self, events: np.ndarray) -> np.ndarray:
        if len(events) == 0:
            return events
        t = events["t"]
        bad_xy = (events["x"] >= self.width) | (events["y"] >= self.height)
        bad_p = (events["p"] != 0) & (events["p"] != 1)
        run = np.maximum.accumulate(np.where(bad_xy | bad_p, np.iinfo(np.int64).min, t))
        prev = np.concatenate(([self.t_last], run[:-1]))
        back = (t < prev) & ~bad_xy & ~bad_p
        bad = bad_xy | bad_p | back
        if not bad.any():
            self.t_last = int(t[-1]) if t[-1] > self.t_last else self.t_last
            return events
        _add(self.rejected, "out_of_bounds", bad_xy.sum())
        _add(self.rejected, "bad_polarity", (bad_p & ~bad_xy).sum())
        _add(self.rejected, "time_backwards", back.sum())
        good = events[~bad]
        if len(good):
            self.t_last = max(self.t_last, int(good["t"][-1]))
        return good

    def get_state(self):
        return {"t_last": self.t_last, "rejected": dict(self.rejected)}

    def reset(self, state=None):
        self.t_last = np.iinfo(np.int64).min if state is None else int(state["t_last"])
        self.rejected = {} if state is None else dict(state["rejected"])

    def shutdown(self):
        pass


@dataclass(frozen=True)
class Windows:
    """Consecutive windows of one stream: ``x [n, 2, h, w]`` float32, their start times (the
    end is start + window_us), event counts, and the host arrival time (monotonic ns) of each
    window's last event (empty windows: of the batch that completed them)."""

    x: np.ndarray
    t_start_us: np.ndarray
    window_us: int
    n_events: np.ndarray
    t_host_ns: np.ndarray

    def __len__(self):
        return len(self.t_start_us)

    def drop_first(self, n):
        return Windows(self.x[n:], self.t_start_us[n:], self.window_us, self.n_events[n:], self.t_host_ns[n:])


class WindowStage:
    """Events -> encoded windows (see the module docstring); counts events in windows and those
    that fell outside every window (before ``origin_us``, or past the last one at the end)."""

    name = "window"

    def __init__(self, input_spec, origin_us: int | None = None):
        self.spec = input_spec
        self.slicer = TimeSlicer(input_spec.window_us, include_incomplete=True, start_time=origin_us)
        self.reset()

    def _encode(self, windows, first_k, t_host_now):
        n = len(windows)
        if n == 0:
            return None
        starts = self.state.t0 + (first_k + np.arange(n, dtype=np.int64)) * self.slicer.stride
        counts = np.fromiter((len(w) for w in windows), np.int64, n)
        ev = concatenate([w for w in windows if len(w)]) if counts.any() else empty(0)
        x = self.spec.encode(ev, int(starts[0]), n)
        self.windowed += int(counts.sum())
        host = np.full(n, t_host_now, np.int64)
        if len(self.marks_t):
            for i, w in enumerate(windows):
                if len(w):
                    j = min(int(np.searchsorted(self.marks_t, int(w["t"][-1]))), len(self.marks_t) - 1)
                    host[i] = self.marks_host[j]
            done = np.searchsorted(self.marks_t, int(starts[-1]) + self.slicer.time_window)
            self.marks_t, self.marks_host = self.marks_t[done:], self.marks_host[done:]
        return Windows(x, starts, self.slicer.time_window, counts, host)

    def step(self, events: np.ndarray, t_host_ns: int):
        """The windows these events complete (a ``Windows``), or None."""
        if len(events) == 0:
            return None
        self.received += len(events)
        self.marks_t = np.append(self.marks_t, int(events["t"][-1]))
        self.marks_host = np.append(self.marks_host, np.int64(t_host_ns))
        before = len(self.state.pending)
        windows, self.state = self.slicer.step(events, self.state)
        out = self._encode(windows, self.state.emitted - len(windows), t_host_ns)
        gone = before + len(events) - len(self.state.pending) - (int(out.n_events.sum()) if out else 0)
        _add(self.dropped, "before_origin", gone)
        return out

    def finish(self, t_host_ns: int):
        """The last, possibly incomplete, windows at the end of the stream."""
        windows = self.slicer.finish(self.state)
        out = self._encode(windows, self.state.emitted, t_host_ns)
        left = len(self.state.pending) - (int(out.n_events.sum()) if out else 0)
        _add(self.dropped, "past_last_window", left)
        self.state = TimeSlicerState(self.state.t0, empty(0), self.state.emitted + len(windows), self.state.t_last)
        return out

    @property
    def pending(self) -> int:
        """Events held for windows not yet complete."""
        return len(self.state.pending)

    def get_state(self):
        s = self.state
        return {"t0": s.t0, "pending": s.pending.copy(), "emitted": s.emitted, "t_last": s.t_last,
                "received": self.received, "windowed": self.windowed, "dropped": dict(self.dropped),
                "marks_t": self.marks_t.copy(), "marks_host": self.marks_host.copy()}

    def reset(self, state=None):
        if state is None:
            self.state = TimeSlicerState()
            self.received = self.windowed = 0
            self.dropped = {}
            self.marks_t, self.marks_host = np.zeros(0, np.int64), np.zeros(0, np.int64)
            return
        self.state = TimeSlicerState(state["t0"], state["pending"].copy(), state["emitted"], state["t_last"])
        self.received, self.windowed = int(state["received"]), int(state["windowed"])
        self.dropped = dict(state["dropped"])
        self.marks_t, self.marks_host = state["marks_t"].copy(), state["marks_host"].copy()

    def shutdown(self):
        pass


class ModelStage:
    """One network step per window; state for ``batch`` streams, explicit and copyable.

    ``backend``: ``fast`` (``FastNetwork``; raises for layers it cannot run), ``torch``, or
    ``auto`` (fast when ``FastNetwork.from_network`` accepts the network, else torch).
    """

    name = "model"

    def __init__(self, network, backend: str = "auto", batch: int = 1):
        from ..snn.fast import FastNetwork

        self.network = network
        self.fast = None
        if backend in ("auto", "fast"):
            try:
                self.fast = FastNetwork.from_network(network)
            except NotImplementedError as e:
                if backend == "fast":
                    raise ValueError(f"model.backend=fast: {e}") from None
        self.backend = "fast" if self.fast is not None else "torch"
        self.batch = int(batch)
        self.reset()

    def step(self, x: np.ndarray) -> np.ndarray:
        """Logits ``[n, batch, C]`` for inputs ``x [n, batch, 2, h, w]`` (n windows in time order)."""
        if self.fast is not None:
            ys = []
            for xt in x:
                y, self.state = self.fast.step(xt, self.state, inplace=True)
                ys.append(y)
            return np.stack(ys) if ys else np.zeros((0, self.batch, *self.fast.out_shape), np.float32)
        with torch.no_grad():
            y, self.state = self.network.run(torch.from_numpy(np.ascontiguousarray(x)), self.state)
        return y.numpy()

    def get_state(self):
        if self.fast is not None:
            return {"backend": "fast", "v": [v.copy() for v in self.state.v]}
        from ..snn import state as S

        return {"backend": "torch", "state": S.clone(self.state)}

    def reset(self, state=None):
        if state is None:
            self.state = (self.fast.init_state(self.batch) if self.fast is not None
                          else self.network.init_state(self.batch))
            return
        if state["backend"] != self.backend:
            raise ValueError(f"model state is for backend {state['backend']!r}, this stage runs {self.backend!r}")
        if self.fast is not None:
            from ..snn.fast import FastState

            self.state = FastState(tuple(v.copy() for v in state["v"]))
        else:
            from ..snn import state as S

            self.state = S.clone(state["state"])

    def shutdown(self):
        pass


class HeadStage:
    """Classification decisions from per-window logits (see the module docstring)."""

    name = "head"

    def __init__(self, decision, classes, emit: str = "decisions", stream: str = "0"):
        self.decision = decision
        self.classes = tuple(classes)
        self.emit = emit
        self.stream = stream
        self.reset()

    def step(self, windows: Windows, logits: np.ndarray) -> list[dict]:
        """Results (without ``latency_ms``) for ``windows`` and their logits ``[n, C]``."""
        out = []
        S, d = self.decision.smoothing_steps, self.decision
        for i in range(len(windows)):
            self.ring[self.count % S] = logits[i]
            self.count += 1
            mean = self.ring[:min(self.count, S)].mean(0, dtype=np.float64)
            e = np.exp(mean - mean.max())
            prob = e / e.sum()
            c = int(prob.argmax())
            committed = bool(prob[c] >= d.commit_probability and c != d.background)
            if self.emit == "decisions":
                if not committed or c == self.committed:
                    continue
            if committed:
                self.committed = c
            t0 = int(windows.t_start_us[i])
            out.append({"stream": self.stream, "t_start_us": t0, "t_end_us": t0 + windows.window_us,
                        "latency_ms": None, "task": "classification", "class_id": c, "class_name": self.classes[c],
                        "probability": float(prob[c]), "probabilities": [float(p) for p in prob],
                        "committed": committed, "_host_ns": int(windows.t_host_ns[i])})
        return out

    def get_state(self):
        return {"ring": self.ring.copy(), "count": self.count, "committed": self.committed}

    def reset(self, state=None):
        if state is None:
            self.ring = np.zeros((self.decision.smoothing_steps, len(self.classes)), np.float32)
            self.count, self.committed = 0, None
        else:
            self.ring, self.count, self.committed = state["ring"].copy(), int(state["count"]), state["committed"]

    def shutdown(self):
        pass
