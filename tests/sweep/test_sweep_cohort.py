"""Cohorts in a sweep (``sweep.cohort``): a worker trains a cell's confirm repeats together, and its tune trials
that the sampler draws before any result, and every run is still its own MLflow run and Optuna trial with
what one model per run records. The worker loop runs
in-process with real (tiny) training, read back from MLflow and Optuna."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from sweep_testkit import all_runs, assert_exactly_once, child_runs, client, open_sweep, write_spec

from nnlab.sweep._worker import Stop, run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.xdist_group("sweep")

TUNED = {"grid": {"model.depth": [1, 2]}, "tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1, "log": True}},
         "trials": 2, "seeds": 3, "pruner": "none"}
TRAIN = {"epochs": 4, "early_stopping": 2, "diagnostics": True}
EXACT = ("nnlab.cohort_size",)  # the one tag a cohort adds


def _sweep(tmp_path: Path, name: str, cohort: int | str) -> tuple[dict[str, object], object]:
    folder = tmp_path / name
    folder.mkdir()
    path = write_spec(folder, "cohorts", {**TUNED, "cohort": cohort}, train=TRAIN)
    plan, store, tracker, ledger, parent, job = open_sweep(path, folder)
    assert run_worker(job) == 0
    mlflow = client(store.root)
    runs = all_runs(mlflow, "cohorts")
    assert_exactly_once(child_runs(runs), len(plan.cells) * (plan.trials + plan.seeds))  # the parent: its coordinator's
    return {r.data.tags["nnlab.slot"]: r for r in child_runs(runs)}, (mlflow, ledger, plan)


def test_a_cohort_records_what_one_model_per_run_records(tmp_path: Path) -> None:
    together, (mlflow, ledger, plan) = _sweep(tmp_path, "auto", "auto")
    alone, (mlflow_alone, ledger_alone, _) = _sweep(tmp_path, "one", 1)
    assert set(together) == set(alone)
    confirm = [slot for slot in together if "/confirm/" in slot]
    assert len(confirm) == 6
    for slot, run in together.items():
        other = alone[slot]
        # the confirm repeats three at a time; the two tune trials, which TPE draws before any result, together
        assert run.data.tags.get("nnlab.cohort_size") == ("3" if slot in confirm else "2")
        assert "nnlab.cohort_size" not in other.data.tags
        assert run.data.params == other.data.params
        tags = {k: v for k, v in run.data.tags.items() if k not in EXACT and not k.startswith("mlflow.")}
        other_tags = {k: v for k, v in other.data.tags.items() if not k.startswith("mlflow.")}
        assert set(tags) == set(other_tags), slot
        for key in ("nnlab.status", "nnlab.phase", "nnlab.cell", "nnlab.seed_index", "nnlab.best_epoch"):
            assert tags.get(key) == other_tags.get(key), (slot, key)
        assert set(run.data.metrics) == set(other.data.metrics), slot
        for key, value in other.data.metrics.items():
            if key == "train_seconds":
                continue
            scale = abs(run.data.metrics.get("val_loss", 1.0)) if key.startswith("gap_") else abs(value)
            assert math.isclose(run.data.metrics[key], value, rel_tol=1e-5, abs_tol=1e-5 * scale + 1e-7), (slot, key)
        steps = [m.step for m in mlflow.get_metric_history(run.info.run_id, "val_loss")]
        assert steps == [m.step for m in mlflow_alone.get_metric_history(other.info.run_id, "val_loss")]
        assert sorted(a.path for a in mlflow.list_artifacts(run.info.run_id)) == \
            sorted(a.path for a in mlflow_alone.list_artifacts(other.info.run_id))
    for cell in plan.cells:  # the trials told the same values
        values = [sorted((t.user_attrs["nnlab_slot"], t.value) for t in
                         optuna.load_study(study_name=plan.confirm_study(cell), storage=lg.storage.storage).trials
                         if t.state.name == "COMPLETE") for lg in (ledger, ledger_alone)]
        assert [s for s, _ in values[0]] == [s for s, _ in values[1]] == [0, 1, 2]
        for (_, a), (_, b) in zip(*values, strict=True):
            assert math.isclose(a, b, rel_tol=1e-5)


class _StopAfter(Stop):
    """A stop request that arrives after ``checks`` safe points (the cohort checks after every epoch)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.left = checks

    def check(self) -> None:
        self.left -= 1
        if self.left < 0:
            self.requested = True
        super().check()


def test_a_stop_in_a_cohort_kills_its_runs_and_gives_every_slot_back(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "stopped", {"grid": {"model.depth": [1]}, "seeds": 3, "pruner": "none"},
                      train={"epochs": 6})
    plan, store, tracker, ledger, parent, job = open_sweep(path, tmp_path)
    with pytest.raises(KeyboardInterrupt):  # a worker process returns 130 on it
        run_worker(job, _StopAfter(3))
    mlflow = client(store.root)
    runs = child_runs(all_runs(mlflow, "stopped"))
    assert len(runs) == 3 and {r.info.status for r in runs} == {"KILLED"}
    assert {r.data.tags["nnlab.status"] for r in runs} == {"killed"}
    assert {r.data.tags["nnlab.cohort_size"] for r in runs} == {"3"}
    study = optuna.load_study(study_name=plan.confirm_study(plan.cells[0]), storage=ledger.storage.storage)
    assert sorted(t.user_attrs["nnlab_slot"] for t in study.trials if t.state.name == "WAITING") == [0, 1, 2]
    assert run_worker(job) == 0  # resumed: each slot once
    assert_exactly_once(child_runs(all_runs(mlflow, "stopped")), 3)


def test_an_accelerator_fault_in_a_cohort_kills_its_runs_and_queues_its_slots(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of device memory while a cohort trains: the worker stops with the accelerator's exit (a fresh
    one starts), every member's run is KILLED, never FAILED, and every slot is queued again."""
    import tensorflow as tf

    from nnlab.errors import DeviceFault
    from nnlab.train._cohort import Cohort

    def out_of_memory(self: Cohort, between_epochs: object = None, hooks: object = None) -> list[object]:
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[3,4096,4096]")

    path = write_spec(tmp_path, "oom", {"seeds": 2, "pruner": "none"})
    plan, store, tracker, ledger, parent, job = open_sweep(path, tmp_path)
    monkeypatch.setattr(Cohort, "train", out_of_memory)
    with pytest.raises(DeviceFault):
        run_worker(job)
    mlflow = client(store.root)
    runs = child_runs(all_runs(mlflow, "oom"))
    assert len(runs) == 2 and {r.info.status for r in runs} == {"KILLED"}
    assert {r.data.tags["nnlab.status"] for r in runs} == {"killed"}
    assert all("accelerator" in r.data.tags["nnlab.error"] for r in runs)
    study = optuna.load_study(study_name=plan.confirm_study(plan.cells[0]), storage=ledger.storage.storage)
    assert sorted(t.user_attrs["nnlab_slot"] for t in study.trials if t.state.name == "WAITING") == [0, 1]
    monkeypatch.undo()
    assert run_worker(job) == 0
    assert_exactly_once(child_runs(all_runs(mlflow, "oom")), 2)


def _tune_runs(tmp_path: Path, name: str, sweep: dict[str, object], epochs: int) -> tuple[list[object], object]:
    path = write_spec(tmp_path, name, {"grid": {"model.depth": [1]}, "seeds": 0, **sweep}, train={"epochs": epochs})
    plan, store, tracker, ledger, parent, job = open_sweep(path, tmp_path)
    assert run_worker(job) == 0
    runs = child_runs(all_runs(client(store.root), name))
    assert_exactly_once(runs, plan.trials)
    study = optuna.load_study(study_name=plan.tune_study(plan.cells[0]), storage=ledger.storage.storage)
    return sorted(runs, key=lambda r: int(r.data.tags["nnlab.trial"])), study


def test_only_the_trials_a_sampler_draws_before_any_result_share_a_cohort(tmp_path: Path) -> None:
    """TPE draws its start-up trials (2 of 4) without results: those two train together; the next two wait
    for the results they are drawn from, and train one at a time through the same engine."""
    runs, study = _tune_runs(tmp_path, "guided", {"tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1}},
                                                  "trials": 4, "sampler": "tpe", "pruner": "none"}, epochs=2)
    assert [r.data.tags["nnlab.cohort_size"] for r in runs] == ["2", "2", "1", "1"]
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 4


def test_trials_that_tune_the_graph_are_taken_one_at_a_time(tmp_path: Path) -> None:
    """Random draws need no result, but a tuned width may change the graph: no batch, each trial alone."""
    runs, study = _tune_runs(tmp_path, "graphs", {"tune": {"model.width": {"choices": [4, 8]},
                                                           "train.learning_rate": {"low": 1e-3, "high": 0.1}},
                                                  "trials": 4, "sampler": "random", "pruner": "none"}, epochs=2)
    assert [r.data.tags["nnlab.cohort_size"] for r in runs] == ["1"] * 4
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 4


def test_a_pruned_tune_trial_in_a_cohort_ends_as_one_pruned_alone(tmp_path: Path) -> None:
    """Random draws train two at a time (``cohort: 2``); once two trials have completed, the percentile pruner
    stops a member behind them: its trial is PRUNED, its run FINISHED with status pruned and the epochs it
    trained, while its partner trains on."""
    runs, study = _tune_runs(tmp_path, "pruned", {"tune": {"train.learning_rate": {"low": 1e-6, "high": 1.0,
                                                                                  "log": True}},
                                                  "trials": 6, "sampler": "random", "pruner": "percentile",
                                                  "cohort": 2}, epochs=6)
    assert {r.data.tags["nnlab.cohort_size"] for r in runs} == {"2"}
    states = {t.number: t.state.name for t in study.trials}
    pruned = [r for r in runs if states[int(r.data.tags["nnlab.trial"])] == "PRUNED"]
    assert pruned, states
    for run in pruned:
        assert run.info.status == "FINISHED" and run.data.tags["nnlab.status"] == "pruned"
        assert run.data.metrics["epochs_trained"] < 6
    assert any(states[int(r.data.tags["nnlab.trial"])] == "COMPLETE" and r.data.metrics["epochs_trained"] == 6
               for r in runs[2:])  # a partner of a pruned member, or a later trial, trained every epoch
