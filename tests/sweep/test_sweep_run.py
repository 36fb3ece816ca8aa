"""End to end: ``nnlab plan`` then ``nnlab sweep`` with two workers on the embedded store, read back
with MlflowClient and optuna.load_study."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from sweep_testkit import (
    all_runs,
    assert_exactly_once,
    child_runs,
    client,
    journal,
    nnlab,
    outcomes,
    parent_runs,
    write_spec,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sweep")]

SWEEP = {"grid": {"model.depth": [1, 2]},
         "tune": {"train.learning_rate": {"low": 1.0e-3, "high": 0.2, "log": True}},
         "trials": 3, "seeds": 2, "pruner": "none"}


def test_plan_then_sweep_tune_and_confirm_with_two_workers(shared_store: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "counts", SWEEP)
    plan = nnlab(["plan", str(spec), "--workers", "2"], shared_store, tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    total = int(re.search(r"2 cells x \(3 trials \+ 2 seeds\) = (\d+) runs", plan.stdout).group(1))
    assert total == 10
    assert re.search(r"estimate: about \d+ (s|min) with 2 workers", plan.stdout)
    assert "model.depth=1" in plan.stdout and "model.depth=2" in plan.stdout
    assert not (shared_store / "mlflow.db").exists() or not all_runs(client(shared_store), "counts")

    done = nnlab(["sweep", str(spec), "--workers", "2"], shared_store, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = all_runs(client(shared_store), "counts")
    assert_exactly_once(runs, total)
    assert outcomes(runs) == {("FINISHED", "completed", "tune"): 6, ("FINISHED", "completed", "confirm"): 4}

    # the tags contract
    (parent,) = parent_runs(runs)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["nnlab.sweep_id"] == "counts" and parent.data.tags["nnlab.status"] == "completed"
    sweep_hash = parent.data.tags["nnlab.sweep_hash"]
    # the parent's params: the sweep and the fixed configuration that acts on its (mlp) runs, no nulls
    assert parent.data.params["sweep.seed_keys"] == "train.seed,data.seed"
    assert "model.width" in parent.data.params and "model.heads" not in parent.data.params
    assert "null" not in parent.data.params.values()
    children = child_runs(runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert {r.data.tags["nnlab.cell"] for r in children} == {"model.depth=1", "model.depth=2"}
    assert {r.data.tags["nnlab.sweep_hash"] for r in children} == {sweep_hash}
    assert len({r.data.tags["nnlab.pid"] for r in children}) == 2  # both workers ran slots
    slots = sorted(r.data.tags["nnlab.slot"] for r in children)
    assert slots == sorted(f"model.depth={d}/{phase}/{i}" for d in (1, 2)
                           for phase, n in (("tune", 3), ("confirm", 2)) for i in range(n))

    storage = journal(shared_store)
    for depth in (1, 2):
        tune = optuna.load_study(study_name=f"counts/model.depth={depth}/tune", storage=storage)
        confirm = optuna.load_study(study_name=f"counts/model.depth={depth}/confirm", storage=storage)
        assert [t.state.name for t in tune.trials] == ["COMPLETE"] * 3
        assert [t.state.name for t in confirm.trials] == ["COMPLETE"] * 2
        best = tune.best_trial
        cell_runs = [r for r in children if r.data.tags["nnlab.cell"] == f"model.depth={depth}"]
        for run in cell_runs:
            assert run.data.params["model.depth"] == str(depth)
            assert int(run.data.tags["nnlab.trial"]) in range(3)
            if run.data.tags["nnlab.phase"] == "confirm":
                # every confirm run repeats the cell's best tuned setting with its own seed
                assert float(run.data.params["train.learning_rate"]) == pytest.approx(
                    best.params["train.learning_rate"])
                index = int(run.data.tags["nnlab.seed_index"])
                assert run.data.params["train.seed"] == str(1000 + index)
                assert run.data.tags["nnlab.source_trial"] == str(best.number)

    # the same command again: everything is done, nothing runs twice
    again = nnlab(["sweep", str(spec), "--workers", "2"], shared_store, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing left to run" in again.stdout
    assert_exactly_once(all_runs(client(shared_store), "counts"), total)
