"""End to end: the resume contract. SIGKILL of a worker and of everything, Ctrl-C, spec edits."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
from sweep_testkit import (
    all_runs,
    assert_exactly_once,
    child_runs,
    children_of,
    client,
    finish,
    journal,
    kill,
    nnlab,
    parent_runs,
    start,
    wait_for_running,
    write_spec,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sweep")]

# runs long enough (a few seconds) to be caught running
SLOW = {"data": {"dataset": "moons", "n_samples": 600}, "train": {"epochs": 8, "batch_size": 16}}


def test_killed_workers_and_a_killed_sweep_resume_exactly_once(shared_store: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "killed", {"grid": {"model.depth": [1, 2]}, "seeds": 3}, **SLOW)
    mlflow = client(shared_store)
    sweep = start(["sweep", str(spec), "--workers", "2"], shared_store, tmp_path)
    try:
        # 1. two workers mid-run: one is SIGKILLed (its run is reaped, its slot re-queued, a new worker
        #    starts), the other gets SIGTERM (it ends its run KILLED and puts the slot back itself)
        first, second = wait_for_running(mlflow, "killed", count=2)
        kill(int(first.data.tags["nnlab.pid"]))
        kill(int(second.data.tags["nnlab.pid"]), signal.SIGTERM)
        # 2. then the whole sweep dies mid-run (a crashed machine): coordinator and workers
        (again,) = wait_for_running(mlflow, "killed", finished_first=1,
                                    exclude=(first.info.run_id, second.info.run_id))
        workers = children_of(sweep.pid)
        kill(sweep.pid)
        for pid in workers:
            kill(pid)
        sweep.wait(timeout=30)
    finally:
        if sweep.poll() is None:
            kill(sweep.pid)
    # 3. the same command continues where it stopped
    done = nnlab(["sweep", str(spec), "--workers", "2"], shared_store, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = all_runs(mlflow, "killed")
    assert_exactly_once(runs, 6)
    killed = {r.info.run_id: r for r in child_runs(runs) if r.info.status == "KILLED"}
    assert first.info.run_id in killed
    # the others were stopped mid-run too, unless they were already past their last epoch
    status = {r.info.run_id: r.info.status for r in runs}
    assert status[second.info.run_id] in ("KILLED", "FINISHED") and status[again.info.run_id] in ("KILLED", "FINISHED")
    assert len(killed) >= 2 and {r.data.tags["nnlab.status"] for r in killed.values()} == {"killed"}
    assert not [r for r in child_runs(runs) if r.info.status == "FAILED"]
    assert [r.info.status for r in parent_runs(runs)] == ["FINISHED"]
    storage = journal(shared_store)
    for depth in (1, 2):
        trials = optuna.load_study(study_name=f"killed/model.depth={depth}/confirm", storage=storage).trials
        assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
        assert sorted(t.user_attrs["nnlab_slot"] for t in trials if t.state.name == "COMPLETE") == [0, 1, 2]


def test_ctrl_c_stops_cleanly_resumes_and_spec_changes_need_restart(shared_store: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "interrupted", {"grid": {"model.depth": [1, 2]}, "seeds": 1}, **SLOW)
    mlflow = client(shared_store)
    sweep = start(["sweep", str(spec), "--workers", "2"], shared_store, tmp_path)
    try:
        wait_for_running(mlflow, "interrupted", count=2)
        sweep.send_signal(signal.SIGINT)  # Ctrl-C
        code, out = finish(sweep, timeout=90)
    finally:
        if sweep.poll() is None:
            kill(sweep.pid)
    assert code == 130, out
    assert "nothing is left running" in out and "nnlab sweep" in out
    runs = all_runs(mlflow, "interrupted")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert {r.data.tags["nnlab.status"] for r in child_runs(runs) if r.info.status == "KILLED"} == {"killed"}
    assert not [r for r in child_runs(runs) if r.info.status == "FAILED"]  # an interrupt is not a failure
    assert [(r.info.status, r.data.tags["nnlab.status"]) for r in parent_runs(runs)] == [("KILLED", "interrupted")]

    done = nnlab(["sweep", str(spec), "--workers", "2"], shared_store, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = all_runs(mlflow, "interrupted")
    assert_exactly_once(runs, 2)
    (parent,) = parent_runs(runs)  # resumed under the same parent
    assert parent.info.status == "FINISHED"

    # an edited spec whose cells change is refused, naming the change
    changed = nnlab(["sweep", str(spec), "sweep.grid.model.depth=[1, 3]"], shared_store, tmp_path)
    assert changed.returncode == 2
    assert "sweep.grid.model.depth changed from [1, 2] to [1, 3]" in changed.stderr
    assert "--restart" in changed.stderr and len(changed.stderr.strip().splitlines()) == 1
    # ... unless --restart: old studies go, the old parent and its runs are marked superseded
    fresh = nnlab(["sweep", str(spec), "sweep.grid.model.depth=[3]", "train.epochs=2", "--restart"], shared_store,
                  tmp_path)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    runs = all_runs(mlflow, "interrupted")
    old = [r for r in runs if r.data.tags.get("nnlab.superseded") == "true"]
    assert parent.info.run_id in {r.info.run_id for r in old}
    new_parent = [r for r in parent_runs(runs) if r.info.run_id != parent.info.run_id]
    assert [(r.info.status, r.data.tags["nnlab.status"]) for r in new_parent] == [("FINISHED", "completed")]
    current = [r for r in child_runs(runs) if r.data.tags["mlflow.parentRunId"] == new_parent[0].info.run_id]
    assert [r.data.tags["nnlab.cell"] for r in current] == ["model.depth=3"]
    names = {s.study_name for s in journal(shared_store).get_all_studies() if s.study_name.startswith("interrupted")}
    assert names == {"interrupted", "interrupted/model.depth=3/confirm"}
