"""A stand-in for the spec's data section: every attribute ``load_dataset`` reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from nnlab.data import clear_cache


class DataCfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = "moons"
    train_size: int | float | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    label_noise: float = 0.0
    seed: int = 0
    classes: list[int] | None = None
    standardize: str | bool = "feature"
    standardize_fit: str = "pool"
    augment_space: str = "raw"
    shift: float = 0.125
    rotation: float = 10.0
    zoom: float = 0.1
    noise_std: float = 0.1
    n_samples: int | None = None
    noise: float | None = None
    n_features: int | None = None
    n_classes: int | None = None
    seq_len: int | None = None
    canvas: int | None = None
    function: str | None = None
    x_range: tuple[float, float] | None = None
    ood_range: tuple[float, float] | None = None
    path: str | None = None
    target: str | None = None


def _make_cfg(**overrides: Any) -> DataCfg:
    return DataCfg(**overrides)


@pytest.fixture
def make_cfg() -> Callable[..., DataCfg]:
    """``make_cfg(dataset="digits", train_size=0.5)`` builds a frozen data config."""
    return _make_cfg


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


@pytest.fixture
def small_csv(tmp_path: Any) -> str:
    """A CSV with numeric and text features and a text label column."""
    lines = ["size,weight,colour,kind"]
    for i in range(60):
        kind = ("cat", "dog", "bird")[i % 3]
        colour = ("red", "blue")[i % 2]
        lines.append(f"{i % 7 + 0.5},{(i * 13) % 11 * 1.5},{colour},{kind}")
    path = tmp_path / "animals.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)
