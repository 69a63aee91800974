"""The stages between source and sink: decode, window/encode, model step, head.

Each is a small object with a ``name``, ``step(...)`` (the protocol's ``next``: what it makes
of its input), ``reset(state=None)``, ``get_state()`` and ``shutdown()``. All state is in what
``get_state`` returns; ``reset(get_state())`` on a fresh stage continues exactly.
``warm_up()`` runs the stage's kernels once on throwaway inputs and state (numba loads a
cached kernel on its first call: tens to hundreds of ms), leaving the stage's state as it was.

- ``DecodeStage``: a source's batch as one contiguous EventCD array.
- ``WindowStage``: ``TimeSlicer`` windows of ``input.window_us`` aligned to the stream's first
  event (or ``origin_us``), each encoded by the model's ``InputSpec``. One call emits exactly
  the windows its events complete (a window is complete once an event at or past its end has
  arrived), in chunks of at most ``CAPACITY`` windows as they are binned, so a time gap of G us
  costs G / window_us (empty) windows but never more memory than one chunk. The same pass
  rejects (and counts by reason) events out of bounds, with a polarity other than 0/1, or
  earlier than the running time. A gap longer than ``max_gap_us`` is a clock jump
  (``eventflow.kernels.window_bin``): a lone event that far off is rejected (``time_jump``);
  when the next event confirms the jump, the gap's windows are skipped (counted), windows start
  again at the new time, and the windows after it carry the next ``epoch`` (the number of jumps
  before them): the runner starts the model and head again from rest when the epoch changes,
  which is where the skipped empty windows would have taken a leaky network.
- ``ModelStage``: ``FastNetwork`` (numba) or the torch ``Network``, explicit state for a
  batch of streams.
- ``HeadStage``: classification by the model's ``DecisionSpec``: softmax of the mean logits of
  the last ``smoothing_steps`` windows, committed at ``commit_probability`` (never the
  background class), a committed class replaced at ``switch_probability`` until released.
  ``emit="decisions"`` returns a result only where the rule decides (``DecisionSpec.replay``):
  the committed class is first reached or changes, or is committed again after the stream was
  released (the same gesture again after a rest); ``emit="windows"`` returns every window
  (``committed``: the rule fired there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..events import EVENT_DTYPE
from ..kernels import window_bin as K
from .stage import window_result

__all__ = ["DecodeStage", "HeadStage", "ModelStage", "WindowStage", "Windows"]


class DecodeStage:
    """A source's batch as one contiguous EventCD array, the layout the kernels read.

    It does not look at each event: validation is fused into the window stage's binning pass
    (one pass over the events instead of two), which rejects and counts by reason
    (``WindowStage.rejected``).
    """

    name = "decode"

    def step(self, events: np.ndarray) -> np.ndarray:
        if events.dtype != EVENT_DTYPE:
            raise TypeError(f"decode stage takes EventCD arrays ({EVENT_DTYPE}), got {events.dtype}")
        return np.ascontiguousarray(events)

    def get_state(self):
        return {}

    def warm_up(self):
        pass

    def reset(self, state=None):
        pass

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
    epoch: int = 0          # clock jumps before these windows: a new epoch starts the stream again from rest

    def __len__(self):
        return len(self.t_start_us)

    def drop_first(self, n):
        return Windows(self.x[n:], self.t_start_us[n:], self.window_us, self.n_events[n:], self.t_host_ns[n:],
                       self.epoch)


class WindowStage:
    """Events -> encoded windows (see the module docstring) by the streaming binning kernel
    ``eventflow.kernels.window_bin``; counts events in windows and those outside every window
    (before ``origin_us``, or in the open window at the end when it is not emitted).
    ``max_gap_us``: the clock-jump limit (None: none; the pipeline passes ``source.max_gap_us``)."""

    name = "window"
    CAPACITY = 256   # windows binned per kernel call: the most one chunk of ``step`` holds

    #: the empty windows between ``origin_us`` and the first event may take at most this much memory
    MAX_LEAD_BYTES = 256 << 20

    def __init__(self, input_spec, origin_us: int | None = None, max_gap_us: int | None = None):
        self.spec = input_spec
        self.origin_us = origin_us
        if max_gap_us is not None and not (isinstance(max_gap_us, int) and max_gap_us >= input_spec.window_us):
            raise ValueError(f"source.max_gap_us: expected null (no limit) or an integer of at least one window "
                             f"({input_spec.window_us} us), got {max_gap_us!r}")
        self.max_gap_us = 0 if max_gap_us is None else int(max_gap_us)
        (W, H), (w, h) = input_spec.sensor_size, input_spec.input_size
        self.xmap = (np.arange(W, dtype=np.int64) * w // W).astype(np.int64)
        self.ymap = (np.arange(H, dtype=np.int64) * h // H).astype(np.int64)
        self._out = np.zeros((self.CAPACITY, 2, h, w), np.float32)
        self._counts = np.zeros(self.CAPACITY, np.int64)
        self._touched = np.zeros(self.CAPACITY + 1, np.int64)
        self.reset()

    def _windows(self, xs, counts, host, t0, k0, epoch):
        starts = t0 + (k0 + np.arange(len(counts), dtype=np.int64)) * self.spec.window_us
        return Windows(self.spec._finish(xs), starts, self.spec.window_us, counts, host, epoch)

    def step(self, events: np.ndarray, t_host_ns: int):
        """The windows these events complete: an iterator of ``Windows``, each of at most
        ``CAPACITY`` consecutive windows of one epoch, binned as it is consumed. Take it to the
        end before the next ``step`` or ``get_state``: events a consumer leaves unbinned are
        counted as dropped (``abandoned``), and a ``reset`` while it is suspended ends it."""
        if len(events) == 0:
            return
        self.received += len(events)
        if self.acc is None:
            t0 = int(events["t"][0]) if self.origin_us is None else int(self.origin_us)
            lead = (int(events["t"][0]) - t0) // self.spec.window_us   # empty windows before the first event
            limit = self.MAX_LEAD_BYTES // self._out[0].nbytes   # bytes of one window's frame
            if lead > limit:
                self.received -= len(events)
                raise ValueError(f"source.origin_us: the first event (t={int(events['t'][0])} us) comes {lead} windows "
                                 f"after the origin {t0} us; more than {limit} empty windows would be emitted "
                                 "(set origin_us near the stream's start, or leave it unset)")
            self.acc = K.new_acc(t0, self.spec.window_us)
        words = np.ascontiguousarray(events).view(np.uint64)
        (W, H) = self.spec.sensor_size
        acc, i = self.acc, 0
        self.unbinned = len(events)
        try:
            while True:
                t0, k0, epoch = int(acc[K.A_T0]), int(acc[K.A_K]), int(acc[K.A_GAPS])
                i, n = K.bin_windows(words, i, W, H, self.xmap, self.ymap, self.spec.window_us, acc,
                                     self.partial, self._out, self._counts, self._touched, self.max_gap_us)
                self.unbinned = len(events) - i
                if n:
                    host = np.where(self._touched[:n] == 1, t_host_ns, self.host_open).astype(np.int64)
                    host[self._counts[:n] == 0] = t_host_ns
                    self.host_open = t_host_ns
                if self._touched[self.CAPACITY]:
                    self.host_open = t_host_ns
                if n:   # (windows made in a call come before any jump the call confirms)
                    yield self._windows(self._out[:n].copy(), self._counts[:n].copy(), host, t0, k0, epoch)
                if self.acc is not acc or i >= len(events):   # (reset meanwhile: the rest was the old stream's)
                    return
        finally:
            if self.acc is acc and self.unbinned:   # the consumer stopped early: counted, never lost silently
                self.abandoned += self.unbinned
            self.unbinned = 0

    def finish(self, t_host_ns: int):
        """The open window at the end of the stream, if any event fell in it. A clock-jump
        candidate still waiting is a lone event: rejected (``time_jump``)."""
        if self.acc is not None:
            self.acc[K.A_JUMP_T] = K.NO_TIME
        if self.acc is None or self.acc[K.A_N_OPEN] == 0:
            return None
        n_open = int(self.acc[K.A_N_OPEN])
        xs = self.partial[None].copy()
        t0, k0, epoch = int(self.acc[K.A_T0]), int(self.acc[K.A_K]), int(self.acc[K.A_GAPS])
        self.acc[K.A_K] += 1
        self.acc[K.A_DONE] += n_open
        self.acc[K.A_N_OPEN] = 0
        self.acc[K.A_T_END] += self.spec.window_us
        self.partial[:] = 0
        return self._windows(xs, np.array([n_open], np.int64), np.array([self.host_open], np.int64), t0, k0, epoch)

    def warm_up(self):
        (W, H), one = self.spec.sensor_size, np.zeros(2, np.uint64)   # one event at (0, 0), t = 0
        K.bin_windows(one, 0, W, H, self.xmap, self.ymap, self.spec.window_us, K.new_acc(0, self.spec.window_us),
                      np.zeros_like(self.partial), self._out, self._counts, self._touched, self.max_gap_us)

    @property
    def windowed(self) -> int:
        return 0 if self.acc is None else int(self.acc[K.A_DONE])

    @property
    def dropped(self) -> dict:
        n = {"before_origin": 0 if self.acc is None else int(self.acc[K.A_BEFORE]), "abandoned": self.abandoned}
        return {k: v for k, v in n.items() if v}

    @property
    def rejected(self) -> dict:
        """Events rejected by reason: out of bounds, polarity not 0/1, time going backwards."""
        if self.acc is None:
            return {}
        n = {"out_of_bounds": self.acc[K.A_OOB], "bad_polarity": self.acc[K.A_POL],
             "time_backwards": self.acc[K.A_BACK], "time_jump": self.acc[K.A_JUMP] - self._held}
        return {k: int(v) for k, v in n.items() if v}

    @property
    def _held(self) -> int:
        """1 while a clock-jump candidate waits for the next event to confirm or refute it (the
        kernel counts it in ``A_JUMP`` meanwhile; here it is in flight, so that the rejected
        count never goes down when a jump is confirmed)."""
        return int(self.acc is not None and self.acc[K.A_JUMP_T] != K.NO_TIME)

    @property
    def clock_jumps(self) -> dict:
        """Clock jumps taken (``jumps``) and the empty windows they skipped (``skipped_windows``)."""
        if self.acc is None:
            return {"jumps": 0, "skipped_windows": 0}
        return {"jumps": int(self.acc[K.A_GAPS]), "skipped_windows": int(self.acc[K.A_SKIPPED])}

    @property
    def pending(self) -> int:
        """Events held in the open window, not yet binned (a step's iterator not yet taken to its end),
        or a clock-jump candidate waiting for the next event."""
        return (0 if self.acc is None else int(self.acc[K.A_N_OPEN])) + self.unbinned + self._held

    def get_state(self):
        if self.unbinned:
            raise ValueError("window stage: state taken in the middle of a step (its windows not all taken); "
                             "take it between steps")
        return {"acc": None if self.acc is None else self.acc.copy(), "partial": self.partial.copy(),
                "received": self.received, "host_open": self.host_open, "abandoned": self.abandoned}

    def reset(self, state=None):
        if state is None:
            self.acc = None
            self.partial = np.zeros(self.spec.shape, np.float32)
            self.received = 0
            self.host_open = 0
            self.abandoned = 0
            self.unbinned = 0
            return
        acc = None if state["acc"] is None else np.array(state["acc"], np.int64)
        if acc is not None and acc.shape != (K.ACC_SIZE,):
            raise ValueError(f"window state: {acc.shape[0]} accumulators, this version keeps {K.ACC_SIZE}")
        self.acc = acc
        self.partial = np.array(state["partial"], np.float32)
        self.received = int(state["received"])
        self.host_open = int(state["host_open"])
        self.abandoned = int(state.get("abandoned", 0))
        self.unbinned = 0

    def shutdown(self):
        pass


class ModelStage:
    """One network step per window; state for ``batch`` streams, explicit and copyable.

    ``backend``: ``fast`` (``FastNetwork``; raises for layers it cannot run), ``torch``, ``gpu``
    (``GpuNetwork`` on the CUDA GPU; raises without one), or ``auto`` (fast when
    ``FastNetwork.from_network`` accepts the network, else torch).
    """

    name = "model"

    def __init__(self, network, backend: str = "auto", batch: int = 1):
        from ..snn.fast import FastNetwork

        self.network = network
        self.fast = self.gpu = None
        if backend == "gpu":
            if not torch.cuda.is_available():
                raise ValueError("model.backend=gpu: torch sees no CUDA GPU here (use fast, torch or auto)")
            from ..snn.gpu import GpuNetwork

            self.gpu = GpuNetwork(network, "cuda")
        if backend in ("auto", "fast"):
            try:
                self.fast = FastNetwork.from_network(network)
            except NotImplementedError as e:
                if backend == "fast":
                    raise ValueError(f"model.backend=fast: {e}") from None
        self.backend = "gpu" if self.gpu is not None else "fast" if self.fast is not None else "torch"
        self.batch = int(batch)
        self.reset()

    def step(self, x: np.ndarray) -> np.ndarray:
        """Logits ``[n, batch, C]`` for inputs ``x [n, batch, 2, h, w]`` (n windows in time order)."""
        if self.fast is not None:   # all n windows in one kernel call where the network allows it
            y, self.state = self.fast.run(x, self.state, inplace=True)
            return y
        if self.gpu is not None:
            ys = []
            for xt in x:
                y, self.state = self.gpu.step(xt, self.state, inplace=True)
                ys.append(y)
            return (torch.stack(ys).cpu().numpy() if ys
                    else np.zeros((0, self.batch, *self.gpu.out_shape), np.float32))
        with torch.no_grad():
            y, self.state = self.network.run(torch.from_numpy(np.ascontiguousarray(x)), self.state)
        return y.numpy()

    def warm_up(self):
        x = np.zeros((self.batch, *self.network.in_shape), np.float32)
        x.reshape(self.batch, -1)[:, ::7] = 1.0    # some active inputs: every kernel of a step runs
        if self.fast is not None:   # run, as ``step`` does (network_run where it applies, else per layer)
            self.fast.run(x[None], self.fast.init_state(self.batch), inplace=True)
        elif self.gpu is not None:
            # compiles the kernels and records the CUDA graph bound to the stream's own state tensors
            # (a throwaway state would get the graph, and the stream record its own on its 2nd window);
            # then the state's values are put back
            from ..snn import state as S

            saved = S.clone(self.state)
            for _ in range(2):
                self.gpu.step(x, self.state, inplace=True)
            S.map_state(lambda t, v: t.copy_(v), self.state, saved)
        else:
            with torch.no_grad():
                self.network.run(torch.from_numpy(x[None]), self.network.init_state(self.batch))

    def get_state(self):
        if self.fast is not None:
            past = self.state.past
            return {"backend": "fast", "v": [v.copy() for v in self.state.v], "past": None if past is None else past.copy()}
        from ..snn import state as S

        if self.gpu is not None:   # on the host, like the other backends' states
            return {"backend": "gpu", "state": S.map_state(lambda t: t.to("cpu", copy=True), self.state)}
        return {"backend": "torch", "state": S.clone(self.state)}

    def reset(self, state=None):
        from ..snn import state as S

        if state is None:
            if self.gpu is not None and getattr(self, "state", None) is not None:
                # at rest again in the same tensors: the CUDA graph recorded on them stays valid
                S.map_state(lambda t, rest: t.copy_(rest), self.state, self.gpu.init_state(self.batch))
                return
            self.state = (self.fast.init_state(self.batch) if self.fast is not None
                          else self.gpu.init_state(self.batch) if self.gpu is not None
                          else self.network.init_state(self.batch))
            return
        if state["backend"] != self.backend:
            raise ValueError(f"model state is for backend {state['backend']!r}, this stage runs {self.backend!r}")
        if self.fast is not None:
            from ..snn.fast import FastState

            past = state.get("past")
            self.state = FastState(tuple(v.copy() for v in state["v"]), None if past is None else past.copy())
        elif self.gpu is not None:
            given, old = state["state"], getattr(self, "state", None)   # (checked by step)
            if old is not None and [(k, t.shape) for k, t in S.leaves(old)] == [
                    (k, t.shape) for k, t in S.leaves(given)]:
                # into the tensors the stream's CUDA graph was recorded on (it stays valid); copy_
                # moves the values across devices itself
                S.map_state(lambda t, v: t.copy_(v), old, given)
            else:
                self.state = S.map_state(lambda t: t.to(self.gpu.device, copy=True), given)
        else:
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
        """Results (without ``latency_ms``) for ``windows`` and their logits ``[n, C]``, by the
        model's decision rule (``DecisionSpec.replay``: ``DecisionSpec.step`` over all n at once)."""
        prob, committed, fired, decided, self.state = self.decision.replay(logits, self.state)
        if self.emit == "decisions":
            emit = np.flatnonzero(decided)
        else:
            emit = range(len(windows))
        out = []
        for i in emit:
            p = prob[i]
            c = int(p.argmax())
            r = window_result(windows, i, self.stream, "classification")
            r.update({"class_id": c, "class_name": self.classes[c], "probability": float(p[c]),
                      "probabilities": p.tolist(), "committed": bool(fired[i])})
            out.append(r)
        return out

    def warm_up(self):
        self.decision.step(np.zeros((1, len(self.classes)), np.float32), self.decision.init_state(len(self.classes)))

    def get_state(self):
        s = self.state
        return {"ring": s.ring.copy(), "seen": s.seen.copy(), "committed": s.committed.copy(),
                "released": s.released.copy()}

    def reset(self, state=None):
        from ..model import DecisionState

        if state is None:
            self.state = self.decision.init_state(len(self.classes))
        else:
            committed = np.array(state["committed"], np.int64)
            released = state.get("released")   # (a state saved before the release was tracked: a committed
            # stream resumes holding its class, so its next commit of that class is not told again)
            self.state = DecisionState(np.array(state["ring"], np.float32), np.array(state["seen"], np.int64),
                                       committed, committed < 0 if released is None else np.array(released, bool))

    def shutdown(self):
        pass
