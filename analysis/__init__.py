"""Reports over the runs of a study: read MLflow in bulk, compute per-cell statistics and claims, draw.

Each generator is a module with ``compute(runs, spec, history) -> dict[str, DataFrame]`` and
``draw(frames) -> list[Figure]`` that registers itself here under its report name (``register``, into
``GENERATORS``; ``load_generators`` imports them). Labels live in ``_labels``, drawing helpers in
``_plots``. ``build_report`` turns one or more studies into ``report.html``, ``report.md`` and
``cells.csv``.

Importing this package is cheap; pandas, matplotlib and mlflow load when a report is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# GENERATOR_NAMES: the names a spec's ``report:`` may list, declared once, where importing them costs nothing
# (``nnlab --help`` imports this package); each names a generator module that registers itself under it
from nnlab.registry import REPORTS as GENERATOR_NAMES
from nnlab.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["GENERATOR_NAMES", "GENERATORS", "Figure", "Generator", "HistoryFn", "build_report", "load_generators",
           "register"]

# history(run_ids, keys) -> long DataFrame with columns run_id, key, step, value
HistoryFn = Callable[[Sequence[str], Sequence[str]], "pd.DataFrame"]


@dataclass(frozen=True)
class Figure:
    """One drawn figure: a stable name (file name), a title, a caption that states its message, PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes = field(repr=False)


@dataclass(frozen=True)
class Generator:
    name: str
    title: str
    compute: Callable[..., dict[str, pd.DataFrame]]
    draw: Callable[[dict[str, pd.DataFrame]], list[Figure]]


GENERATORS: Registry[Generator] = Registry("report")


def register(name: str, title: str, compute: Callable[..., dict[str, pd.DataFrame]],
             draw: Callable[[dict[str, pd.DataFrame]], list[Figure]]) -> Generator:
    gen = Generator(name=name, title=title, compute=compute, draw=draw)
    GENERATORS.register(name)(gen)
    return gen


def load_generators() -> Registry[Generator]:
    """Import the generator modules (each registers itself) and return the registry."""
    from analysis import compare, depth, learning_rate, overfitting  # noqa: F401

    return GENERATORS


def build_report(*args: Any, **kwargs: Any) -> Any:
    from analysis._report import build_report as _build

    return _build(*args, **kwargs)
