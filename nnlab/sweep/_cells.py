"""Cells of a sweep: ``nnlab.spec.expand`` is the one definition (reports use it too), so a run's
``nnlab.cell`` tag always names a cell the spec defines.

A cell id is readable and stable: ``model.activation=sigmoid,model.depth=8`` in grid key order
(a linked factor — a grid key without a dot — shows its label), ``default`` without a grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnlab.spec import Cell, expand

DEFAULT_CELL = "default"


def make_cells(grid: Mapping[str, list[Any]]) -> list[Cell]:
    """Every combination of the grid's values, first key varying slowest."""
    return list(expand(dict(grid)))


def cell_id(factors: Mapping[str, Any]) -> str:
    """The id of the cell with these grid values (one value per grid key)."""
    return make_cells({key: [value] for key, value in factors.items()})[0].id


def swept_keys(cells: list[Cell]) -> set[str]:
    """Every dotted spec key some cell sets."""
    return {key for cell in cells for key in cell.values}


__all__ = ["DEFAULT_CELL", "Cell", "cell_id", "make_cells", "swept_keys"]
