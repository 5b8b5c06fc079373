"""The base of every configuration dataclass, and small reusable validators.

A configuration is a frozen dataclass deriving from :class:`Config`. Validation happens on
creation, in three steps:

1. **types from the type hints**: an ``int`` field must hold an int (not a bool, not ``12.0``),
   a ``float`` field a number (YAML reads ``1e-3`` as text: the message says so), a ``str``
   field text, ``X | None`` also ``None``, ``tuple[float, ...]`` a sequence of numbers (lists,
   as JSON and YAML give them, become tuples so equal configurations compare and hash equal);
2. **rules**: a class attribute ``rules = {"field": rule, ...}`` with rules built by
   :func:`between`, :func:`positive`, :func:`non_negative`, :func:`at_least`, :func:`one_of`;
3. **cross-field checks** in :meth:`Config.validate`, raised with :func:`check`.

Every error names the class and the field: ``C4Config.k must be in [1, 16], got 20``.
``to_dict`` / ``from_dict`` round-trip through JSON and YAML; ``from_dict`` builds nested
configurations from the type hints (no hand-kept table) and rejects unknown keys.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, Callable, ClassVar, Mapping

__all__ = ["Config", "Rule", "at_least", "between", "check", "non_negative", "one_of", "positive"]

Rule = Callable[[Any], "str | None"]
"""A rule maps a field's value to ``None`` (valid) or what was expected, e.g. ``"in [1, 16]"``."""


def check(cond: bool, msg: str) -> None:
    """Raise ``ValueError(msg)`` unless ``cond`` (for cross-field checks)."""
    if not cond:
        raise ValueError(msg)


def between(lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> Rule:
    """``lo <= v <= hi`` (``<`` at an open end)."""
    text = f"in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}"

    def rule(v):
        ok = (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
        return None if ok else text
    return rule


def at_least(lo: float) -> Rule:
    """``v >= lo``."""
    return lambda v: None if v >= lo else f">= {lo}"


def positive(v) -> str | None:
    """``v > 0``."""
    return None if v > 0 else "> 0"


def non_negative(v) -> str | None:
    """``v >= 0``."""
    return None if v >= 0 else ">= 0"


def one_of(*choices) -> Rule:
    """``v`` is one of ``choices``."""
    return lambda v: None if v in choices else f"one of {', '.join(repr(c) for c in choices)}"


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _split_optional(hint) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, ``(hint, False)`` otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(hint)):
            return args[0], True
    return hint, False


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_error(cls: str, name: str, v, expected: str) -> ValueError:
    hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(v, str) and expected == "a number" else ""
    return ValueError(f"{cls}.{name} must be {expected}, got {v!r} ({type(v).__name__}){hint}")


def _check_type(cls: str, name: str, v, hint):
    """``v`` checked against ``hint``; returns the value to store (lists become tuples)."""
    hint, optional = _split_optional(hint)
    if v is None:
        if optional:
            return v
        raise ValueError(f"{cls}.{name} must not be None")
    if hint is bool:
        if not isinstance(v, bool):
            raise _type_error(cls, name, v, "true or false")
    elif hint is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _type_error(cls, name, v, "an integer")
    elif hint is float:
        if not _is_number(v):
            raise _type_error(cls, name, v, "a number")
        return float(v)  # 1 and 1.0 are one setting: one cache key, one record
    elif hint is str:
        if not isinstance(v, str):
            raise _type_error(cls, name, v, "text")
    elif typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if not isinstance(v, (tuple, list)):
            raise _type_error(cls, name, v, "a list")
        if args and args[-1] is not Ellipsis and len(v) != len(args):
            raise ValueError(f"{cls}.{name} must have {len(args)} values, got {list(v)!r}")
        item = args[0] if args else Any
        if item in (int, float):
            for x in v:
                if not (_is_number(x) and (item is float or isinstance(x, int))):
                    raise ValueError(f"{cls}.{name} must hold {'integers' if item is int else 'numbers'}, got {list(v)!r}")
            return tuple(item(x) for x in v)
        return tuple(v)
    elif isinstance(hint, type) and issubclass(hint, Config):
        if not isinstance(v, hint):
            raise ValueError(f"{cls}.{name} must be a {hint.__name__}, got {type(v).__name__}")
    return v


class Config:
    """Base of the configuration dataclasses (see the module docstring)."""

    rules: ClassVar[dict[str, Rule]] = {}

    def __post_init__(self) -> None:
        cls = type(self).__name__
        hints = _hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            new = _check_type(cls, f.name, v, hints[f.name])
            if new is not v and not (type(new) is type(v) and new == v):
                object.__setattr__(self, f.name, new)
        for name, rule in self.rules.items():
            v = getattr(self, name)
            expected = None if v is None else rule(v)
            if expected is not None:
                raise ValueError(f"{cls}.{name} must be {expected}, got {v!r}")
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses raise with :func:`check`."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Build from a plain mapping (JSON, YAML), nested configurations included; unknown keys fail."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{cls.__name__}: expected a mapping of fields, got {d!r}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; expected some of {sorted(names)}")
        hints = _hints(cls)
        kwargs = {}
        for k, v in d.items():
            sub, _ = _split_optional(hints[k])
            if isinstance(sub, type) and issubclass(sub, Config) and isinstance(v, Mapping):
                v = sub.from_dict(v)
            kwargs[k] = v
        return cls(**kwargs)

    def replace(self, **changes):
        """A copy with some fields changed (validated again); an unknown field fails."""
        names = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown field(s) {sorted(unknown)}; expected some of {sorted(names)}")
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
