"""Every analysis test runs in its own folder with its own store ($NNLAB_STORE) and experiments/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analysis_testkit import fake_sweep, write_spec

LAB = {
    "data": {"dataset": "digits_flat"},
    "model": {"width": 8},
    "train": {"epochs": 3},
    "sweep": {
        "grid": {"model.depth": [2, 8], "model.activation": ["relu", "sigmoid"]},
        "tune": {"train.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
                 "model.dropout": {"low": 0.0, "high": 0.5}},
        "trials": 6,
        "seeds": 3,
        "objective": "val_loss",
    },
    "expect": [
        {"compare": {"metric": "val_loss", "better": {"model.activation": "relu"},
                     "than": {"model.activation": "sigmoid"}, "where": {"model.depth": 8}}},
        {"trend": {"metric": "val_loss", "along": "model.depth", "should": "increase",
                   "where": {"model.activation": "sigmoid"}}},
    ],
    "report": ["overfitting", "depth", "learning_rate"],
}


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh folder: cwd, $NNLAB_STORE=./store, $NNLAB_EXPERIMENTS=./experiments (empty)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNLAB_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("NNLAB_EXPERIMENTS", str(tmp_path / "experiments"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "experiments").mkdir()
    yield tmp_path


@pytest.fixture
def tracker(lab: Path) -> Any:
    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker

    return Tracker(resolve_store())


def make_study(lab: Path, tracker: Any, name: str = "lab", body: dict[str, Any] | None = None,
               **kwargs: Any) -> tuple[Any, str]:
    """Write experiments/NAME.yaml and a synthetic sweep of it; returns (spec, parent run id)."""
    from nnlab.spec import Spec

    path = write_spec(lab / "experiments", name, body if body is not None else LAB)
    spec = Spec.from_yaml(path)
    kwargs.setdefault("trials", spec.sweep.trials)
    kwargs.setdefault("seeds", spec.sweep.seeds)
    return spec, fake_sweep(tracker, spec, **kwargs)
