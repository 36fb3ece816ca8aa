"""A report over a real tiny sweep: six runs trained with ``execute`` and tagged per the sweep contract
(a parent run, tune and confirm children), then ``nnlab report`` on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from analysis_testkit import write_spec

from nnlab.cli import main

TINY = {
    "data": {"dataset": "digits_flat", "train_size": 300},
    "model": {"width": 8},
    "train": {"epochs": 2, "batch_size": 64},
    "sweep": {
        "grid": {"model.depth": [1, 3]},
        "tune": {"train.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}},
        "trials": 1, "seeds": 2, "objective": "val_loss",
    },
    "expect": [
        {"compare": {"metric": "val_accuracy", "better": {"model.depth": 3}, "than": {"model.depth": 1}}},
        {"bound": {"metric": "test_loss", "below": 100.0}},
    ],
    "report": ["depth", "learning_rate", "overfitting"],
}


def _tiny_sweep(lab: Path, tracker: Any) -> str:
    from nnlab.spec import Spec, expand
    from nnlab.train import execute, prepare

    spec = Spec.from_yaml(write_spec(lab / "experiments", "tiny", TINY))
    parent = tracker.start_run("tiny", run_name="sweep tiny", tags={
        "nnlab.phase": "sweep", "nnlab.sweep_id": "tiny", "nnlab.sweep_hash": spec.spec_hash()})
    for i, cell in enumerate(expand(dict(spec.sweep.grid))):
        lr = (2e-3, 6e-3)[i]  # each cell's one tune trial, which its confirm runs then use
        plan = [("tune", 0, {"train.learning_rate": lr}), ("confirm", 0, {"train.learning_rate": lr, "train.seed": 11}),
                ("confirm", 1, {"train.learning_rate": lr, "train.seed": 12})]
        for phase, index, values in plan:
            tags = {"nnlab.cell": cell.id, "nnlab.sweep_id": "tiny", "nnlab.slot": f"{cell.id}/{phase}/{index}",
                    "nnlab.trial": str(index)}
            if phase == "confirm":
                tags["nnlab.seed_index"] = str(index)
            run_spec = spec.with_values({**cell.values, **values})
            execute(prepare(run_spec), tracker, phase=phase, tags=tags, parent_run_id=parent, figures=False)
    tracker.end_run(parent, "FINISHED")
    return parent


@pytest.mark.slow
def test_report_over_a_real_tiny_sweep(lab: Path, tracker: Any, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the claims table on one line per claim
    parent = _tiny_sweep(lab, tracker)
    assert main(["report", "tiny"]) == 0
    out = lab / "reports" / "tiny"
    html = (out / "report.html").read_text()
    n_figures = len(list((out / "figures").glob("*.png")))
    assert n_figures >= 8 and html.count("<img") == n_figures
    for name in ("depth_grad_heatmap", "lr_u_curve", "compare_isolation_depth", "overfit_curves"):
        assert f"id='tiny__{name}'" in html
    cells = pd.read_csv(out / "cells.csv")
    assert list(cells["model.depth"]) == [1, 3] and set(cells["n"]) == {2} and set(cells["n_completed"]) == {3}
    assert cells["val_accuracy_mean"].between(0, 1).all()
    printed = capsys.readouterr().out
    assert "test_loss stays below 100" in printed and "supported" in printed
    logged = {f.path for f in tracker.client.list_artifacts(parent, "report")}
    assert logged == {"report/report.html", "report/report.md", "report/cells.csv"}
