"""Sweep cells: the cross product of ``sweep.grid``.

A grid key with a dot (``model.depth``) is one spec key and lists its values. A key
without a dot (``variant``) is a *linked* factor: each of its values is a mapping of
dotted keys set together, with an optional ``label``. Linked factors express
ablations that move several keys at once (plain vs residual + batch norm) or
matched comparisons (an MLP and a CNN of equal parameter count).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

LABEL = "label"


def format_value(value: Any) -> str:
    """How a value appears in a cell id: YAML spelling for booleans and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def is_linked(key: str) -> bool:
    return "." not in key


def linked_label(option: dict[str, Any]) -> str:
    if LABEL in option:
        return str(option[LABEL])
    return ";".join(f"{k}={format_value(v)}" for k, v in option.items())


def linked_values(option: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in option.items() if k != LABEL}


@dataclass(frozen=True)
class Cell:
    """One point of the grid."""

    id: str
    factors: dict[str, Any]  # grid key -> value (a linked factor's value is its label)
    values: dict[str, Any]  # dotted spec key -> value to apply

    def matches(self, selector: dict[str, Any]) -> bool:
        """Whether every ``key: value`` of an expectation selector holds in this cell."""
        return all(key in self.factors and self.factors[key] == value for key, value in selector.items())


def expand(grid: dict[str, list[Any]]) -> list[Cell]:
    """All cells in a stable order (grid key order, then value order)."""
    if not grid:
        return [Cell(id="default", factors={}, values={})]
    keys = list(grid)
    out = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        factors: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for key, value in zip(keys, combo, strict=True):
            if is_linked(key):
                factors[key] = linked_label(value)
                values.update(linked_values(value))
            else:
                factors[key] = value
                values[key] = value
        cell_id = ",".join(f"{k}={format_value(v)}" for k, v in factors.items())
        out.append(Cell(id=cell_id, factors=factors, values=values))
    return out


def factor_values(grid: dict[str, list[Any]], key: str) -> list[Any]:
    """The values of a grid key as cells and expectations name them (labels for linked factors)."""
    return [linked_label(v) if is_linked(key) else v for v in grid[key]]
