"""Every generator: computes frames first (checked here as data), then draws them (PNG figures).

One synthetic sweep (4 cells x (10 tune + 3 confirm) runs, a wide learning-rate range so some runs
diverge) is written once for the module.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from analysis_testkit import fake_sweep, runs_table, seeds, write_spec

import analysis
from analysis import Figure, load_generators
from analysis._runs import RunReader, StudyRuns, select_runs
from nnlab.spec import Spec
from nnlab.tracking import resolve_store

BODY = {
    "data": {"dataset": "digits_flat"},
    "model": {"width": 8},
    "train": {"epochs": 4},
    "sweep": {
        "grid": {"model.depth": [2, 8], "model.activation": ["relu", "sigmoid"]},
        "tune": {"train.learning_rate": {"low": 1e-4, "high": 1.0, "log": True},
                 "model.dropout": {"low": 0.0, "high": 0.5}},
        "trials": 10, "seeds": 3, "objective": "val_loss",
    },
    "report": ["overfitting", "depth", "learning_rate"],
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StudyRuns, RunReader]]:
    from nnlab.tracking._mlflow import Tracker

    root = tmp_path_factory.mktemp("generators")
    store = resolve_store(store=str(root / "store"))
    spec = Spec.from_yaml(write_spec(root, "gen", BODY))
    fake_sweep(Tracker(store), spec, trials=10, seeds=3, epochs=4, seed=7)
    reader = RunReader(store)
    yield select_runs(spec, reader), reader


def test_the_registry_is_closed_and_matches_the_spec() -> None:
    from nnlab.spec._schema import REPORTS

    registry = load_generators()
    assert tuple(registry.names()) == tuple(sorted(analysis.GENERATOR_NAMES)) == tuple(sorted(REPORTS))
    from nnlab.errors import SpecError

    with pytest.raises(SpecError, match="expected one of: compare, depth, learning_rate, overfitting"):
        registry.get("depht")


@pytest.mark.parametrize("name", analysis.GENERATOR_NAMES)
def test_generator_contract(name: str, study: tuple[StudyRuns, RunReader]) -> None:
    s, reader = study
    gen = load_generators().get(name)
    frames = gen.compute(s.runs, s.spec, reader.history)
    assert frames and all(isinstance(f, pd.DataFrame) for f in frames.values())
    figs = gen.draw(frames)
    assert figs, f"{name} drew nothing on a sweep that varies depth, activation, learning rate and dropout"
    for fig in figs:
        assert isinstance(fig, Figure) and fig.png.startswith(b"\x89PNG") and fig.title and fig.caption
    assert len({f.name for f in figs}) == len(figs)


@pytest.mark.parametrize("name", analysis.GENERATOR_NAMES)
def test_generator_on_runs_that_vary_nothing_it_needs(name: str) -> None:
    spec = Spec.from_dict({"name": "bare", "data": {"dataset": "moons"}, "model": {"width": 8},
                           "sweep": {"grid": {"model.width": [4, 8]}, "seeds": 2}})
    runs = runs_table(seeds({"model.width": 4}, "val_loss", [0.5, 0.6]) + seeds({"model.width": 8}, "val_loss",
                                                                                 [0.4, 0.45]))
    gen = load_generators().get(name)
    frames = gen.compute(runs, spec, None)
    for fig in gen.draw(frames):
        assert fig.png.startswith(b"\x89PNG")


def test_compare_frames(study: tuple[StudyRuns, RunReader]) -> None:
    s, reader = study
    frames = load_generators().get("compare").compute(s.runs, s.spec, reader.history)
    iso = frames["isolation"]
    assert set(iso["key"]) == {"model.depth", "model.activation"}
    assert len(iso) == 2 * 2 * 2 and (iso["n"] == 3).all()  # key x value x series, 3 confirm seeds each
    assert (iso["ci_low"] <= iso["mean"]).all() and (iso["mean"] <= iso["ci_high"]).all()
    by_key = frames["by_key"]
    assert len(by_key) == len(s.runs) * 4  # every run against 2 grid and 2 tune keys
    par = frames["parallel"]
    assert par[[c for c in par.columns if c.startswith("pos:")]].stack().between(0, 1).all()
    imp = frames["importance"]
    assert set(imp["param"]) == {"train.learning_rate", "model.dropout"}
    assert imp.groupby("cell")["importance"].sum().round(6).isin([0.0, 1.0]).all()
    curves = frames["curves"]
    assert set(curves["key"]) == {"loss", "val_loss"} and curves["run_id"].nunique() == 4


def test_depth_heat_map_shows_gradients_vanishing_in_deep_sigmoid_nets(study: tuple[StudyRuns, RunReader]) -> None:
    s, reader = study
    frames = load_generators().get("depth").compute(s.runs, s.spec, reader.history)
    grad = frames["grad_norms"]
    sig = grad[(grad["series"] == "activation=sigmoid") & (grad["depth"] == 8)].set_index("layer")["grad_norm"]
    relu = grad[(grad["series"] == "activation=relu") & (grad["depth"] == 8)].set_index("layer")["grad_norm"]
    assert list(sig.index) == list(range(1, 9))
    assert sig[1] < sig[8] / 50  # vanishes towards the input
    assert relu[1] > relu[8] / 5
    assert set(grad[grad["depth"] == 2]["layer"]) == {1, 2}  # no layer beyond a net's depth
    obj = frames["objective"]
    deep = obj[(obj["series"] == "activation=sigmoid")].set_index("value")["mean"]
    assert deep[8] > deep[2]
    units = frames["units"]
    assert set(units["stat"]) == {"dead_units", "saturated_units"}


def test_learning_rate_frames(study: tuple[StudyRuns, RunReader]) -> None:
    s, reader = study
    frames = load_generators().get("learning_rate").compute(s.runs, s.spec, reader.history)
    pts = frames["points"]
    assert set(pts["status"]) == {"completed", "diverged"}
    assert pts.loc[pts["status"] == "diverged", "loss"].isna().all()
    bound = frames["boundary"].set_index("series")
    assert len(bound) == 4
    for _, row in bound.iterrows():  # synthetic runs diverge above a fixed rate: the boundary is clean
        if math.isfinite(row["min_diverged_lr"]) and math.isfinite(row["max_stable_lr"]):
            assert row["max_stable_lr"] < row["min_diverged_lr"]
    best = frames["best_lr"]
    assert (best["lr_low"] <= best["best_lr"]).all() and (best["best_lr"] <= best["lr_high"]).all()
    curves = frames["curves"]
    assert 2 <= curves["lr"].nunique() <= 5 and curves["series"].nunique() == 1


def test_overfitting_frames(study: tuple[StudyRuns, RunReader]) -> None:
    s, reader = study
    frames = load_generators().get("overfitting").compute(s.runs, s.spec, reader.history)
    reg = frames["gap_regularizers"]
    assert set(reg["key"]) == {"model.dropout"} and set(reg["kind"]) == {"tune"}
    corr = np.corrcoef(reg[reg["metric"] == "gap_loss"]["value"].astype(float),
                       reg[reg["metric"] == "gap_loss"]["mean"].astype(float))[0, 1]
    assert corr < -0.5  # more dropout, smaller gap
    assert frames["gap_size"].empty and frames["label_noise"].empty
    curves = frames["curves"]
    assert set(curves["key"]) == {"loss", "val_loss"} and set(curves["value"]) == {2, 8}


def test_overfitting_against_a_grid_of_sizes_and_label_noise() -> None:
    spec = Spec.from_dict({"name": "of", "data": {"dataset": "digits_flat"}, "model": {"width": 8},
                           "sweep": {"grid": {"data.train_size": [100, 1000], "data.label_noise": [0.0, 0.3]},
                                     "seeds": 2}})
    rows: list[dict[str, Any]] = []
    for size in (100, 1000):
        for noise in (0.0, 0.3):
            for i in range(2):
                rows.append({"seed_index": i, "params": {"data.train_size": size, "data.label_noise": noise},
                             "gap_loss": 0.5 / math.log10(size) + i * 0.01, "accuracy": 0.99,
                             "val_accuracy": 0.9 - noise, "test_accuracy": 0.89 - noise, "val_loss": 0.3})
    frames = load_generators().get("overfitting").compute(runs_table(rows), spec, None)
    size = frames["gap_size"]
    assert set(size["key"]) == {"data.train_size"} and set(size["series"]) == {"label_noise=0", "label_noise=0.3"}
    g = size[size["series"] == "label_noise=0"].set_index("value")["mean"]
    assert g[100] > g[1000]
    noise = frames["label_noise"]
    val = noise[(noise["metric"] == "val_accuracy")].groupby("value")["mean"].mean()
    assert val[0.0] > val[0.3]
    names = [f.name for f in load_generators().get("overfitting").draw(frames)]
    assert names == ["overfit_gap_size", "overfit_label_noise"]


def test_a_grid_factor_with_one_level_gets_no_isolation_figure() -> None:
    from analysis_testkit import runs_table, seeds

    from analysis.compare import isolation
    from nnlab.spec import Spec

    spec = Spec.from_dict({"name": "t", "data": {"dataset": "moons"}, "model": {"width": 8},
                           "sweep": {"grid": {"model.depth": [2, 4], "model.residual": [False]}, "seeds": 2}})
    rows = seeds({"model.depth": 2, "model.residual": False}, "val_loss", [0.3, 0.31])
    rows += seeds({"model.depth": 4, "model.residual": False}, "val_loss", [0.2, 0.21])
    frame = isolation(runs_table(rows), spec)
    assert set(frame["key"]) == {"model.depth"}
