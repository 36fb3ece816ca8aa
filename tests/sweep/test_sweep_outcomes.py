"""End to end: pruned, diverged and failed runs; grid-only and search-only counts; bad input."""

from __future__ import annotations

import collections
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


def test_grid_only_with_a_diverging_learning_rate(shared_store: Path, tmp_path: Path) -> None:
    """cells x seeds runs; the cell whose learning rate blows up is recorded as diverged, the sweep goes on;
    the worker is recycled after --recycle runs."""
    spec = write_spec(tmp_path, "diverge", {"grid": {"train.learning_rate": [0.1, 1000.0]}, "seeds": 2},
                      train={"optimizer": "sgd"})
    done = nnlab(["sweep", str(spec), "--workers", "1", "--recycle", "2"], shared_store, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = all_runs(client(shared_store), "diverge")
    assert_exactly_once(runs, 2 * 2)
    assert len({r.data.tags["nnlab.pid"] for r in child_runs(runs)}) == 2  # a fresh worker after 2 runs
    by_cell = collections.defaultdict(set)
    for run in child_runs(runs):
        assert run.data.tags["nnlab.phase"] == "confirm" and run.info.status == "FINISHED"
        by_cell[run.data.tags["nnlab.cell"]].add(run.data.tags["nnlab.status"])
    assert by_cell == {"train.learning_rate=0.1": {"completed"}, "train.learning_rate=1000.0": {"diverged"}}
    diverged = optuna.load_study(study_name="diverge/train.learning_rate=1000.0/confirm",
                                 storage=journal(shared_store))
    assert {(t.state.name, t.user_attrs["nnlab_status"]) for t in diverged.trials} == {("PRUNED", "diverged")}
    assert parent_runs(runs)[0].info.status == "FINISHED"


def test_search_only_with_a_pruner_that_prunes(shared_store: Path, tmp_path: Path) -> None:
    """seeds: 0 makes cells x trials runs and no confirm study; successive halving stops weak trials early."""
    spec = write_spec(tmp_path, "prune", {"grid": {"model.depth": [1, 2]},
                                          "tune": {"train.learning_rate": {"low": 1.0e-5, "high": 0.5, "log": True}},
                                          "trials": 4, "seeds": 0, "pruner": "successive_halving"},
                      train={"epochs": 4})
    done = nnlab(["sweep", str(spec), "--workers", "2"], shared_store, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = all_runs(client(shared_store), "prune")
    assert_exactly_once(runs, 2 * 4)
    counts = outcomes(runs)
    assert counts[("FINISHED", "pruned", "tune")] >= 1, counts
    assert set(counts) <= {("FINISHED", "pruned", "tune"), ("FINISHED", "completed", "tune")}
    for run in child_runs(runs):
        if run.data.tags["nnlab.status"] == "pruned":
            assert run.data.metrics["epochs_trained"] < 4  # stopped early, still in MLflow
    storage = journal(shared_store)
    names = {s.study_name for s in storage.get_all_studies()}
    assert {"prune/model.depth=1/tune", "prune/model.depth=2/tune"} <= names
    assert not any(n.startswith("prune/") and n.endswith("/confirm") for n in names)
    pruned = [t for d in (1, 2) for t in optuna.load_study(study_name=f"prune/model.depth={d}/tune",
                                                           storage=storage).trials if t.state.name == "PRUNED"]
    assert pruned and all(t.intermediate_values for t in pruned)


def test_failed_trials_are_recorded_and_a_cell_that_only_fails_stops_the_sweep(shared_store: Path,
                                                                                tmp_path: Path) -> None:
    """A trial whose values cannot run is a FAILED run and the sweep goes on; a cell whose every tune
    trial failed stops the sweep with one clear line."""
    spec = write_spec(tmp_path, "failing", {"grid": {"data.n_samples": [300, 20]},
                                            "tune": {"data.train_size": {"choices": [50, 100000]}},
                                            "trials": 2, "seeds": 1, "sampler": "grid"})
    done = nnlab(["sweep", str(spec), "--workers", "1"], shared_store, tmp_path)  # cells in order
    assert done.returncode == 1, done.stdout + done.stderr
    message = done.stderr.strip().splitlines()
    assert len(message) == 1
    assert message[0].startswith("nnlab: every one of the 2 tune trials of cell data.n_samples=20 failed; "
                                 "first error: "), message
    assert "train_size" in message[0]
    runs = all_runs(client(shared_store), "failing")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    first = [r for r in child_runs(runs) if r.data.tags["nnlab.cell"] == "data.n_samples=300"]
    statuses = collections.Counter((r.data.tags["nnlab.phase"], r.data.tags["nnlab.status"]) for r in first)
    assert statuses == {("tune", "failed"): 1, ("tune", "completed"): 1, ("confirm", "completed"): 1}
    failed = [r for r in child_runs(runs) if r.data.tags["nnlab.status"] == "failed"]
    assert {r.info.status for r in failed} == {"FAILED"} and all(r.data.tags.get("nnlab.error") for r in failed)
    (parent,) = parent_runs(runs)
    assert (parent.info.status, parent.data.tags["nnlab.status"]) == ("FAILED", "failed")


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = write_spec(tmp_path, "bad", {"grid": {"model.depth": [1, 2]}, "seeds": 1})
    typo = nnlab(["sweep", str(spec), "model.widht=4"], store, tmp_path)
    assert typo.returncode == 2 and "did you mean 'width'" in typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1
    pool = nnlab(["sweep", str(spec), "data.train_size=100000"], store, tmp_path)  # caught by the preflight
    assert pool.returncode == 2 and "data.train_size" in pool.stderr, pool.stderr
    plan = nnlab(["plan", str(spec), "--no-estimate"], store, tmp_path)
    assert plan.returncode == 0 and "2 cells x (0 trials + 1 seeds) = 2 runs" in plan.stdout
    assert not store.exists()  # neither sweep nor plan created the store
    dead = nnlab(["sweep", str(spec), "--storage", "postgresql://nnlab@127.0.0.1:1/nowhere"], store, tmp_path)
    assert dead.returncode == 1
    assert "Optuna storage postgresql" in dead.stderr and "127.0.0.1:1/nowhere is not reachable" in dead.stderr
    assert "Traceback" not in dead.stderr
