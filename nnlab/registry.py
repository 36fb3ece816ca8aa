"""Closed name -> object registries, one per extension point.

Entries are registered with a decorator next to their implementation. Registering
never imports TensorFlow: builders import Keras inside their bodies, so validating a
spec (which checks names against registries) stays fast.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from nnlab.errors import SpecError

T = TypeVar("T")

# The names a spec's ``report:`` may list: declared here, where the CLI can read them without importing the
# spec schema (pydantic) or the report generators (pandas, matplotlib); each names a generator module of
# ``analysis`` that registers itself under it (tests hold the two equal).
REPORTS = ("compare", "overfitting", "depth", "learning_rate")


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ``"; did you mean 'x'?"`` for a close match, else an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """A mapping from names to objects that refuses unknown names clearly."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            self._meta[name] = meta
            return obj

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def unknown_message(self, name: object) -> str:
        names = self.names()
        return f"unknown {self.kind} {name!r}; expected one of: {', '.join(names)}{did_you_mean(str(name), names)}"

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise SpecError(self.unknown_message(name))
        return self._entries[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]
