"""One generic registry for models, model families, datasets, protocols and metrics.

Entries are either objects or lazy ``"module:attr"`` strings, so that heavy libraries (torch, open_clip,
peft) are imported only when an entry is used.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from overspec.errors import OverspecError, UnknownNameError

T = TypeVar("T")


def unknown_name_message(kind: str, name: str, choices: Iterable[str]) -> str:
    """``unknown model 'x'; did you mean 'y'? available: ...`` for any collection of names."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return f"unknown {kind} {name!r}; {hint}available: {', '.join(choices) or 'none'}"


class Registry(Generic[T]):
    """A named collection of ``T``. Duplicate names are errors; unknown names suggest close matches."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | None:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) under ``name``; usable as a decorator."""
        if obj is None:

            def decorator(target: T) -> T:
                self.register(name, target)
                return target

            return decorator  # type: ignore[return-value]
        if name in self._entries:
            raise OverspecError(f"{self.kind} {name!r} is registered twice; names must be unique")
        if isinstance(obj, str) and ":" not in obj:
            raise OverspecError(f"lazy {self.kind} entry {name!r} must look like 'module:attr', got {obj!r}")
        self._entries[name] = obj
        return None

    def get(self, name: str) -> T:
        """The entry called ``name``, importing it first if it was registered lazily."""
        if name not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, attr = entry.split(":", 1)
            entry = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        return unknown_name_message(self.kind, name, self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
