"""The worker loop in-process, with real Optuna and MLflow stores and training replaced by a stub:
an exception in a run is a recorded failure, a cell whose tune runs all fail gets no confirm runs,
and a run that finished before its trial was told is adopted instead of run again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from sweep_testkit import all_runs, child_runs, client, open_sweep, write_spec

from nnlab.errors import TrialFailed
from nnlab.spec import Spec
from nnlab.sweep._slots import SLOT, WORKER, take_slot
from nnlab.sweep._worker import run_worker
from nnlab.train._runner import RunResult

optuna.logging.set_verbosity(optuna.logging.WARNING)


class FakeTraining:
    """``prepare``/``execute`` stand-ins: a run per call in MLflow, val_loss = learning rate; depth 2 raises."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def prepare(self, spec: Spec, cache: Any = None) -> Any:
        return spec

    def execute(self, spec: Spec, tracker: Any, *, phase: str, tags: dict[str, str], parent_run_id: str,
                run_name: str, epoch_hook: Any, progress: bool, figures: bool,
                started_run: str | None = None) -> RunResult:
        self.calls.append(tags["nnlab.slot"])
        run_id = tracker.start_run(spec.name, run_name=run_name, parent_run_id=parent_run_id,
                                   tags={**tags, "nnlab.phase": phase, "nnlab.status": "running"})
        tracker.log_params(run_id, spec.flat_params())
        if spec.model.depth == 2:
            tracker.set_tags(run_id, {"nnlab.status": "failed", "nnlab.error": "RuntimeError: boom"})
            tracker.end_run(run_id, "FAILED")
            raise TrialFailed("RuntimeError: boom")
        value = spec.train.learning_rate
        assert epoch_hook(0, {"val_loss": value}) is False
        tracker.log_metrics(run_id, {"val_loss": value, "epochs_trained": 1.0}, step=0)
        tracker.set_tags(run_id, {"nnlab.status": "completed"})
        tracker.end_run(run_id, "FINISHED")
        return RunResult(run_id=run_id, status="completed", metrics={"val_loss": value},
                         history={"val_loss": [value]}, epochs=1)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTraining:
    training = FakeTraining()
    monkeypatch.setattr("nnlab.train.prepare", training.prepare)
    monkeypatch.setattr("nnlab.train.execute", training.execute)
    monkeypatch.setattr("nnlab.sweep._worker._clear_session", lambda: None)
    return training


def test_failures_and_adoption_in_process(fake: FakeTraining, tmp_path: Path) -> None:
    path = write_spec(tmp_path, "inproc", {"grid": {"model.depth": [1, 2]},
                                           "tune": {"train.learning_rate": {"choices": [0.25, 0.5]}},
                                           "trials": 2, "seeds": 1, "pruner": "none", "sampler": "grid",
                                           "seed_keys": ["train.seed"], "cohort": 1})  # stubbed: one model per run
    plan, store, tracker, ledger, parent, job = open_sweep(path, tmp_path)

    # a worker took tune slot 0 of the first cell, ran learning rate 0.5, logged a FINISHED run, and died
    # before telling Optuna
    cell = plan.cells[0]
    study = ledger.tune(cell)
    study.sampler = optuna.samplers.PartialFixedSampler({"train.learning_rate": 0.5}, optuna.samplers.RandomSampler())
    first = take_slot(study, None)
    assert plan.dims[0].suggest(first) == 0.5
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    first.set_user_attr(WORKER, f"{os.uname().nodename} {dead.pid} ")
    orphan = tracker.start_run("inproc", run_name="orphan", parent_run_id=parent, tags={
        "nnlab.phase": "tune", "nnlab.status": "completed", "nnlab.slot": f"{cell.id}/tune/0",
        "nnlab.cell": cell.id, "nnlab.sweep_id": "inproc", "nnlab.trial": "0"})
    tracker.log_params(orphan, {"train.learning_rate": 0.5})
    tracker.log_metrics(orphan, {"val_loss": 0.5, "epochs_trained": 1.0}, step=0)
    tracker.end_run(orphan, "FINISHED")
    assert ledger.reconcile() == [f"{cell.id}/tune/0"]

    assert run_worker(job) == 0

    # the orphaned run was adopted, not run again
    assert f"{cell.id}/tune/0" not in fake.calls
    trials = ledger.tune(cell).get_trials()
    adopted = [t for t in trials if t.user_attrs.get(SLOT) == 0 and t.state.name == "COMPLETE"]
    assert len(adopted) == 1 and adopted[0].value == 0.5 and adopted[0].user_attrs["nnlab_run_id"] == orphan
    # the other slot ran; confirm repeats the best (lowest) learning rate with its own seed
    # (which point the grid sampler gives slot 1 depends on the sweep's hash: compare with what it ran)
    progress = ledger.cell_progress(cell)
    tuned = [t for t in ledger.tune(cell).get_trials() if t.state.name == "COMPLETE"]
    lowest = min(tuned, key=lambda t: t.value)
    assert len(tuned) == 2 and progress.finished and progress.best.params == lowest.params
    runs = child_runs(all_runs(client(store.root), "inproc"))
    (confirm,) = [r for r in runs if r.data.tags["nnlab.phase"] == "confirm"]
    assert float(confirm.data.params["train.learning_rate"]) == lowest.params["train.learning_rate"]
    assert confirm.data.params["train.seed"] == "1000"

    # an exception in a run is a recorded failure, never retried; a cell with only failures is not confirmed
    failed = ledger.cell_progress(plan.cells[1])
    assert failed.failed and "RuntimeError: boom" in failed.first_error
    assert [v.done for v in failed.confirm] == [False]
    assert sorted(fake.calls).count(f"{plan.cells[1].id}/tune/0") == 1
    assert {r.info.status for r in runs if r.data.tags["nnlab.cell"] == plan.cells[1].id} == {"FAILED"}


def test_an_accelerator_fault_gives_the_slot_back_and_is_never_a_result(fake: FakeTraining, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of device memory under a run (as TensorFlow raises it, through the runner's TrialFailed): the run
    is KILLED, not FAILED; its trial fails without an outcome and the slot is queued again; the worker
    stops (a fresh one starts with the memory released) and the next one runs the slot."""
    import tensorflow as tf

    from nnlab.errors import DeviceFault, device_fault

    oom = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[4096,4096]")
    assert device_fault(TrialFailed("ResourceExhaustedError: OOM")) is None  # text alone names no class
    chained = TrialFailed("failed")
    chained.__cause__ = oom
    assert device_fault(chained) is oom and device_fault(RuntimeError("CUDA_ERROR_ILLEGAL_ADDRESS")) is not None
    assert device_fault(ValueError("shapes do not match")) is None

    real = fake.execute

    def out_of_memory(spec: Spec, tracker: Any, **kwargs: Any) -> RunResult:
        run_id = tracker.start_run(spec.name, run_name=kwargs["run_name"], parent_run_id=kwargs["parent_run_id"],
                                   tags={**kwargs["tags"], "nnlab.phase": kwargs["phase"], "nnlab.status": "running"})
        tracker.end_run(run_id, "FAILED")  # what the runner records before the worker sees the cause
        raise TrialFailed(f"ResourceExhaustedError: {oom.message}") from oom

    path = write_spec(tmp_path, "oom", {"seeds": 2, "pruner": "none", "cohort": 1})  # one run at a time
    plan, store, tracker, ledger, parent, job = open_sweep(path, tmp_path)
    monkeypatch.setattr("nnlab.train.execute", out_of_memory)
    with pytest.raises(DeviceFault, match="the accelerator failed under run .*OOM when allocating"):
        run_worker(job)
    (killed,) = child_runs(all_runs(client(store.root), "oom"))
    assert (killed.info.status, killed.data.tags["nnlab.status"]) == ("KILLED", "killed")
    assert "ResourceExhaustedError" in killed.data.tags["nnlab.error"]
    view = ledger.cell_progress(plan.cells[0]).confirm[0]
    assert not view.done and len(view.waiting) == 1 and view.lost[0].user_attrs["nnlab_status"] == "device_fault"

    monkeypatch.setattr("nnlab.train.execute", real)  # the device is fine again
    assert run_worker(job) == 0
    runs = child_runs(all_runs(client(store.root), "oom"))
    assert sorted((r.data.tags["nnlab.slot"], r.info.status) for r in runs) == [
        ("default/confirm/0", "FINISHED"), ("default/confirm/0", "KILLED"), ("default/confirm/1", "FINISHED")]
    assert ledger.cell_progress(plan.cells[0]).finished
