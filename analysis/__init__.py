"""Reports over the runs of a study: read MLflow in bulk, compute per-cell statistics and claims, draw.

Each generator is a module with ``compute(runs, spec, history) -> dict[str, DataFrame]`` and
``draw(frames) -> list[Figure]``; ``GENERATORS`` maps report names to them. ``build_report``
turns one or more studies into ``report.html``, ``report.md`` and ``cells.csv``.

Importing this package is cheap; pandas, matplotlib and mlflow load when a report is built.
"""

from __future__ import annotations

from typing import Any

# the names a spec's ``report:`` may list, declared once where specs are validated (no pandas there); each
# names a generator module that registers itself under it (tested equal)
from nnlab.spec._schema import REPORTS as GENERATOR_NAMES

__all__ = ["GENERATOR_NAMES", "build_report", "generators"]


def generators() -> Any:
    """The registry of generators (name -> module), filled on first use."""
    from analysis._base import GENERATORS

    return GENERATORS


def build_report(*args: Any, **kwargs: Any) -> Any:
    from analysis._report import build_report as _build

    return _build(*args, **kwargs)
