"""Per-stream network state: nested dicts and NamedTuples of tensors, batch dimension = streams.

A network's state is what ``Network.init_state(batch)`` returns: a dict keyed by layer name
(nested for composite layers) whose leaves are the neurons' NamedTuple states, every tensor
with the streams on dim 0. These functions never modify their arguments; they return new
states, so one stream can join, leave or restart without touching the others:

- ``select(state, indices)``: keep some streams (a stream leaves the batch);
- ``concat(states)``: put batches side by side (a stream joins);
- ``reset_streams(state, indices, initial)``: restart some streams from ``initial``;
- ``to_flat_dict`` / ``from_flat_dict``: a ``{"lif1.v": tensor}`` dict for ``torch.save``
  (``weights_only=True`` loads it) or safetensors, and back into a template's structure;
- ``batch_size`` / ``check_batch``: a step whose input batch differs from the state's raises
  instead of silently zeroing or broadcasting.

>>> import torch
>>> from .neurons import MembraneState
>>> st = {"lif1": MembraneState(torch.arange(3.0).view(3, 1))}
>>> select(st, [2, 0])["lif1"].v.flatten().tolist()
[2.0, 0.0]
>>> concat([st, st])["lif1"].v.shape
torch.Size([6, 1])
>>> reset_streams(st, [1], {"lif1": MembraneState(torch.full((1, 1), -1.0))})["lif1"].v.flatten().tolist()
[0.0, -1.0, 2.0]
>>> to_flat_dict(st)
{'lif1.v': tensor([[0.],
        [1.],
        [2.]])}
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

__all__ = ["batch_size", "check_batch", "clone", "concat", "detach", "from_flat_dict", "init_state", "leaves",
           "map_state", "reset_streams", "select", "to_flat_dict"]


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def map_state(fn: Callable[..., torch.Tensor], state, *others):
    """Apply ``fn`` to each tensor of ``state`` (and the matching tensors of ``others``), keeping the structure."""
    if isinstance(state, torch.Tensor):
        return fn(state, *others)
    if state is None:
        return None
    if isinstance(state, dict):
        for o in others:
            if not isinstance(o, dict) or o.keys() != state.keys():
                raise ValueError(f"states differ in structure: keys {sorted(state)} vs "
                                 f"{sorted(o) if isinstance(o, dict) else type(o).__name__}")
        return {k: map_state(fn, v, *(o[k] for o in others)) for k, v in state.items()}
    if isinstance(state, tuple):
        for o in others:
            if not isinstance(o, tuple) or len(o) != len(state) or type(o) is not type(state):
                raise ValueError(f"states differ in structure: {type(state).__name__} vs {type(o).__name__}")
        items = [map_state(fn, v, *(o[i] for o in others)) for i, v in enumerate(state)]
        return type(state)(*items) if _is_namedtuple(state) else tuple(items)
    raise TypeError(f"a state holds tensors in dicts and (named) tuples, not {type(state).__name__}")


def leaves(state, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """``(dotted name, tensor)`` pairs in a fixed order (dict order, then tuple fields)."""
    if isinstance(state, torch.Tensor):
        return [(prefix, state)]
    if state is None:
        return []
    if isinstance(state, dict):
        items = state.items()
    elif _is_namedtuple(state):
        items = zip(state._fields, state)
    elif isinstance(state, tuple):
        items = ((str(i), v) for i, v in enumerate(state))
    else:
        raise TypeError(f"a state holds tensors in dicts and (named) tuples, not {type(state).__name__}")
    out = []
    for k, v in items:
        out.extend(leaves(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def init_state(spec, shape: Sequence[int], dtype=torch.float32, device=None):
    """The resting state of a layer spec (e.g. a ``Sequential``) for an input of ``shape``, batch first.

    >>> from .neurons import LIF
    >>> init_state(LIF(), (4, 2)).v.shape
    torch.Size([4, 2])
    """
    return spec.init_state(tuple(shape), dtype, device)


def batch_size(state) -> int | None:
    """Number of streams in ``state`` (dim 0 of its tensors), ``None`` for a state without tensors."""
    sizes = {t.shape[0] for _, t in leaves(state)}
    if len(sizes) > 1:
        raise ValueError(f"state tensors disagree on the number of streams: {sorted(sizes)}")
    return sizes.pop() if sizes else None


def check_batch(state, n: int, where: str = "step") -> None:
    """Raise ``ValueError`` unless ``state`` holds exactly ``n`` streams (or no tensors)."""
    b = batch_size(state)
    if b is not None and b != n:
        raise ValueError(f"{where}: the input has {n} streams but the state holds {b}; use "
                         "eventflow.snn.state.select / concat / init_state to change the streams explicitly")


def _index(indices, device) -> torch.Tensor:
    idx = torch.as_tensor(indices, dtype=torch.long, device=device).flatten()
    return idx


def select(state, indices):
    """The streams ``indices`` of ``state``, in that order (a copy)."""
    return map_state(lambda t: t.index_select(0, _index(indices, t.device)), state)


def concat(states: Sequence[Any]):
    """Streams of ``states`` side by side, in order; all must share one structure."""
    if not states:
        raise ValueError("concat needs at least one state")
    return map_state(lambda *ts: torch.cat(ts, 0), states[0], *states[1:])


def reset_streams(state, indices, initial):
    """``state`` with streams ``indices`` replaced by ``initial`` (batch 1, broadcast, or one per index).

    The other streams' tensors are copied unchanged; ``state`` itself is not modified.
    """
    def put(t, init):
        idx = _index(indices, t.device)
        if init.shape[0] not in (1, len(idx)) or init.shape[1:] != t.shape[1:]:
            raise ValueError(f"reset_streams: initial state {tuple(init.shape)} does not fit {len(idx)} streams "
                             f"of {tuple(t.shape[1:])}")
        return t.index_copy(0, idx, init.to(t.dtype).expand(len(idx), *t.shape[1:]))
    return map_state(put, state, initial)


def detach(state):
    """The same state cut from the autograd graph (truncated backpropagation through time)."""
    return map_state(torch.Tensor.detach, state)


def clone(state):
    """A deep copy of the tensors of ``state``."""
    return map_state(torch.Tensor.clone, state)


def to_flat_dict(state, prefix: str = "") -> dict[str, torch.Tensor]:
    """``{"layer.field": tensor}`` for saving (contiguous, detached: fit for safetensors too);
    ``from_flat_dict`` restores it into a template."""
    return {k: t.detach().contiguous() for k, t in leaves(state, prefix)}


def from_flat_dict(flat: dict[str, torch.Tensor], like, prefix: str = ""):
    """Rebuild a state shaped like the template ``like`` from ``to_flat_dict``'s output.

    Names and per-stream shapes must match the template; the batch size may differ (the
    restored state has the saved streams). Tensors go to the template's dtype and device.
    """
    expected = dict(leaves(like, prefix))
    if set(flat) != set(expected):
        missing, extra = sorted(set(expected) - set(flat)), sorted(set(flat) - set(expected))
        raise KeyError(f"saved state does not match the network: missing {missing}, unexpected {extra}")
    for k, t in expected.items():
        if tuple(flat[k].shape[1:]) != tuple(t.shape[1:]):
            raise ValueError(f"saved state {k!r} has per-stream shape {tuple(flat[k].shape[1:])}, "
                             f"the network expects {tuple(t.shape[1:])}")
    names = iter(expected)
    restored = map_state(lambda t: flat[next(names)].to(dtype=t.dtype, device=t.device), like)
    batch_size(restored)
    return restored
