"""Confirm repeats set every key of sweep.seed_keys: the worker loop in-process with real (tiny) training,
read back from MLflow and Optuna; and what ``nnlab plan`` says a repeat sets."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from sweep_testkit import all_runs, child_runs, client, open_sweep, write_spec

from nnlab.cli import main as cli_main
from nnlab.spec import Spec
from nnlab.sweep._plan import build_plan
from nnlab.sweep._progress import describe_repeats
from nnlab.sweep._worker import run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.xdist_group("sweep")

SEEDED = {"grid": {"model.depth": [1, 2]}, "seeds": 2, "pruner": "none"}


def test_confirm_repeats_set_every_seed_key_alike_in_every_cell(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "seeded", SEEDED, data={"seed": 5})
    plan, store, tracker, ledger, parent, job = open_sweep(path, tmp_path)
    assert run_worker(job) == 0

    mlflow = client(store.root)
    runs = [r for r in child_runs(all_runs(mlflow, "seeded")) if r.data.tags["nnlab.phase"] == "confirm"]
    assert len(runs) == 4 and {r.data.tags["nnlab.status"] for r in runs} == {"completed"}
    seeds: dict[str, dict[int, tuple[str, str]]] = {}
    for run in runs:
        index = int(run.data.tags["nnlab.seed_index"])
        assert run.data.tags["nnlab.seed_keys"] == "train.seed,data.seed"
        seeds.setdefault(run.data.tags["nnlab.cell"], {})[index] = (run.data.params["train.seed"],
                                                                    run.data.params["data.seed"])
        epochs = int(run.data.metrics["epochs_trained"])
        for key in ("train_eval_loss", "train_eval_accuracy"):  # per epoch, then the kept model's value
            assert [m.step for m in mlflow.get_metric_history(run.info.run_id, key)] == list(range(epochs + 1))
        assert run.data.metrics["chance_accuracy"] == 0.5
    one, two = (seeds[cell.id] for cell in plan.cells)
    assert one[0][1] != one[1][1]  # the repeats of a cell draw different data
    assert one == two == {0: ("0", "5"), 1: ("1", "6")}  # repeat k sets the same values in every cell

    storage = ledger.storage
    for cell in plan.cells:
        study = optuna.load_study(study_name=plan.confirm_study(cell), storage=storage.storage)
        attrs = sorted((t.user_attrs["nnlab_seed"], t.user_attrs["nnlab_seeds"]) for t in study.trials)
        assert attrs == [(0, {"train.seed": 0, "data.seed": 5}), (1, {"train.seed": 1, "data.seed": 6})]


def test_plan_says_what_each_repeat_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(tmp_path, "said", SEEDED, data={"seed": 5})
    assert cli_main(["plan", str(path), "--no-estimate"]) == 0
    out = capsys.readouterr().out
    assert "confirm per cell: 2 runs of the cell, repeat k = 0..1 setting train.seed 0..1, data.seed 5..6" in out

    tuned = {"tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1, "log": True}}, "trials": 2, "seeds": 3,
             "seed_keys": ["data.seed"]}
    plan = build_plan(Spec.from_yaml(write_spec(tmp_path, "tuned", tuned)), None)
    assert describe_repeats(plan).startswith("confirm per cell: 3 runs of the best tuned setting, repeat k = 0..2 "
                                             "setting data.seed 1000..1002 (")
    single = build_plan(Spec.from_yaml(write_spec(tmp_path, "single", {"seeds": 1})), None)
    assert describe_repeats(single) == "confirm per cell: 1 run of the cell, setting train.seed 0, data.seed 0"
