"""Frozen dataclasses from parsed YAML/JSON mappings, validated with errors that name the key path.

The pipeline's and training's configs are both read by ``from_mapping``:

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Source:
...     rate: float = 1.0
...     names: tuple[str, ...] = ()
...     mode: str | None = None
>>> from_mapping(Source, {"rate": 2, "names": ["a"]})
Source(rate=2.0, names=('a',), mode=None)
>>> from_mapping(Source, {"rat": 2})
Traceback (most recent call last):
ValueError: rat: unknown key (known: rate, names, mode)
>>> from_mapping(Source, {"names": ["a", 3]})
Traceback (most recent call last):
ValueError: names[1]: expected a string, got int 3
>>> from_mapping(Source, {"mode": "x"}, "my.yaml", choices={"mode": ("a", "b")})
Traceback (most recent call last):
ValueError: my.yaml: mode: expected one of a, b, got 'x'

Nested dataclass fields are built from nested mappings, and their errors name the whole path
(``source.rate: ...``).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing

__all__ = ["check_count", "check_number", "from_mapping", "type_name"]

_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false", dict: "a mapping",
          tuple: "a list"}


def _args(tp):
    """The members of a union (``X | None``), else ``(tp,)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def type_name(tp) -> str:
    """``int | None`` -> 'an integer or null' (for messages)."""
    members = [a for a in _args(tp) if a is not type(None)]
    names = [_NAMES.get(typing.get_origin(a) or a, getattr(a, "__name__", str(a))) for a in members]
    return " or ".join(names) + (" or null" if type(None) in _args(tp) else "")


def _convert(value, tp, key, choices):
    """``value`` as type ``tp`` (a list becomes a tuple, an int a float where a float is
    expected), or raises ValueError naming ``key``."""
    base = typing.get_origin(tp) or tp
    if base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif base in (str, bool, dict):
        ok = isinstance(value, base)
    elif base is tuple:
        ok = isinstance(value, (list, tuple))
        item = typing.get_args(tp)[:1]
        if ok and item and item[0] is not Ellipsis:
            return tuple(_convert(v, item[0], f"{key}[{i}]", choices) for i, v in enumerate(value))
        return tuple(value) if ok else _fail(key, tp, value)
    elif dataclasses.is_dataclass(base):
        return _build(base, value, key, choices)
    else:
        ok = True   # a type this reader does not check (Any, ...)
    if not ok:
        _fail(key, tp, value)
    return float(value) if base is float else value


def _fail(key, tp, value):
    raise ValueError(f"{key}: expected {type_name(tp)}, got {type(value).__name__} {value!r}")


def _value(value, tp, key, choices):
    members = _args(tp)
    if value is None:
        if type(None) in members:
            return None
        _fail(key, tp, value)
    errors = []
    for m in (a for a in members if a is not type(None)):
        try:
            return _convert(value, m, key, choices)
        except ValueError as e:
            errors.append(e)
    deeper = [e for e in errors if not str(e).startswith(f"{key}: ")]
    if deeper:   # a nested mapping or a list item is wrong: its own key says where
        raise deeper[0]
    _fail(key, tp, value)


def _build(cls, d, where, choices):
    if not isinstance(d, dict):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kw = {}
    for k, v in d.items():
        key = f"{where}.{k}" if where else str(k)
        if k not in fields:
            raise ValueError(f"{key}: unknown key (known: {', '.join(fields)})")
        kw[k] = _value(v, hints[k], key, choices)
        allowed = choices.get(key)
        if allowed and kw[k] is not None and kw[k] not in allowed:
            raise ValueError(f"{key}: expected one of {', '.join(allowed)}, got {kw[k]!r}")
    missing = [n for n, f in fields.items() if n not in kw and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where + '.' if where else ''}{missing[0]}: missing key")
    return cls(**kw)


def from_mapping(cls, d, where: str = "", choices: dict | None = None, key: str = ""):
    """``cls(**d)`` with nested dataclasses built from nested mappings. Unknown keys, wrong
    types, missing required keys and values outside ``choices`` (``{"key.path": allowed}``)
    raise ValueError naming the key path (under ``key``, where ``d`` sits in a larger
    document), after ``where`` (e.g. the file) when given."""
    try:
        return _build(cls, {} if d is None else d, key, choices or {})
    except ValueError as e:
        raise ValueError(f"{where}: {e}" if where else str(e)) from None


def check_number(v, key: str, lo, hi, lo_open: bool = True) -> None:
    """Raise ValueError naming ``key`` unless ``v`` is a finite number in ``(lo, hi]`` (``[lo, hi]``
    when not ``lo_open``); the range checks of spec dataclasses' ``__post_init__``."""
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)   # (numpy's bool_ is not Real)
    if not (ok and (v > lo if lo_open else v >= lo) and v <= hi):
        raise ValueError(f"{key}: expected a number in {'(' if lo_open else '['}{lo}, {hi}], got {v!r}")


def check_count(v, key: str, hi: int) -> None:
    """Raise ValueError naming ``key`` unless ``v`` is an integer (not a bool) in ``1..hi``."""
    if not (isinstance(v, numbers.Integral) and not isinstance(v, bool) and 1 <= v <= hi):
        raise ValueError(f"{key}: expected an integer in 1..{hi}, got {v!r}")
