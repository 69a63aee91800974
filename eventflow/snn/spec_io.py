"""Layer specs to and from plain JSON-able dicts, so a model's architecture is data, not code.

Every spec is a frozen dataclass, so its description is its class name and its fields:
``{"type": "Conv2d", "in_channels": 2, ...}``; a ``Sequential`` lists ``[name, spec]`` pairs.
Only the classes named in ``SPEC_TYPES`` are built back: a model file cannot name arbitrary code.

>>> from .layers import Flatten, Linear, Sequential
>>> from .neurons import LIF
>>> spec = Sequential([("fc", Linear(4, 3)), ("lif", LIF(tau=3.0)), ("flat", Flatten())])
>>> spec_from_dict(spec_to_dict(spec)) == spec
True
"""
from __future__ import annotations

import dataclasses

from . import layers as L
from . import neurons as N
from .surrogate import Surrogate

__all__ = ["SPEC_TYPES", "spec_from_dict", "spec_to_dict"]

SPEC_TYPES = {cls.__name__: cls for cls in (
    L.Conv2d, L.Linear, L.MaxPool2d, L.AvgPool2d, L.SumPool2d, L.Flatten, L.PixelUnshuffle, L.StepStack, L.ReLU,
    L.BatchNorm,
    L.Sequential, L.SEWBlock, N.IF, N.LIF, N.PLIF, N.DALIF, N.ALIF, N.LI, Surrogate)}


def spec_to_dict(spec) -> dict:
    """A JSON-able description of ``spec`` (nested for Sequential, SEWBlock and surrogates)."""
    name = type(spec).__name__
    if SPEC_TYPES.get(name) is not type(spec):
        raise TypeError(f"cannot describe a {type(spec).__qualname__}: known spec types are {sorted(SPEC_TYPES)}")
    if isinstance(spec, L.Sequential):
        return {"type": name, "layers": [[n, spec_to_dict(s)] for n, s in spec.layers]}
    out = {"type": name}
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        out[f.name] = spec_to_dict(v) if dataclasses.is_dataclass(v) else v
    return out


def spec_from_dict(d, where: str = "spec"):
    """The spec described by ``d`` (inverse of ``spec_to_dict``); errors name the path in ``d``."""
    if not isinstance(d, dict) or "type" not in d:
        raise ValueError(f"{where}: expected an object with a 'type' key, got {type(d).__name__}")
    cls = SPEC_TYPES.get(d["type"])
    if cls is None:
        raise ValueError(f"{where}.type: unknown layer type {d['type']!r}; known: {', '.join(sorted(SPEC_TYPES))}")
    if cls is L.Sequential:
        items = d.get("layers")
        if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
            raise ValueError(f"{where}.layers: expected a list of [name, layer] pairs")
        return L.Sequential([(n, spec_from_dict(s, f"{where}.layers[{n}]")) for n, s in items])
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in d.items():
        if k == "type":
            continue
        if k not in known:
            raise ValueError(f"{where}.{k}: unknown field of {cls.__name__}; known: {', '.join(sorted(known))}")
        kwargs[k] = spec_from_dict(v, f"{where}.{k}") if isinstance(v, dict) else v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:   # the constructor's checks, placed in the file
        raise ValueError(f"{where}: {e}") from None
