"""Named registries with aliases, as timm registers its models where they are defined.

A method is registered in the module that implements it, under a name that says what it does
(``mutual_calibration``), with the thesis label and the paper's acronym as aliases (``c3``,
``cpmc``)::

    METHODS.register("mutual_calibration", spec, aliases=("c3", "cpmc"))
    METHODS.get("c3") is METHODS.get("mutual_calibration")     # True
    METHODS.names()                                             # canonical names, in order

Lookups are case-insensitive; an unknown name fails with the list of known names and aliases.
"""

from __future__ import annotations

from typing import Generic, Iterator, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Items of one kind (``kind`` names it in messages), each under a canonical name and aliases."""

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind, self.hint = kind, hint
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, item: T, aliases: tuple[str, ...] | list[str] = ()) -> T:
        """Add ``item`` under ``name`` and ``aliases``; a name taken by another item is an error."""
        for n in (name, *aliases):
            key = n.lower()
            owner = self._aliases.get(key)
            if owner is not None and owner != name:
                raise ValueError(f"{self.kind} name {n!r} is already taken by {owner!r}")
        self._items[name] = item
        for n in (name, *aliases):
            self._aliases[n.lower()] = name
        return item

    def canonical(self, name: str) -> str:
        """The canonical name of ``name`` (itself or an alias)."""
        if not isinstance(name, str) or name.lower() not in self._aliases:
            known = ", ".join(f"{n} ({', '.join(self.aliases(n))})" if self.aliases(n) else n for n in self._items)
            raise ValueError(f"unknown {self.kind} {name!r}: expected one of {known}" + (f" ({self.hint})" if self.hint else ""))
        return self._aliases[name.lower()]

    def get(self, name: str) -> T:
        """The item registered under ``name`` or one of its aliases."""
        return self._items[self.canonical(name)]

    def aliases(self, name: str) -> list[str]:
        """The aliases of canonical ``name`` (not the name itself), in registration order."""
        return [a for a, n in self._aliases.items() if n == name and a != name.lower()]

    def names(self) -> list[str]:
        """Canonical names, in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
