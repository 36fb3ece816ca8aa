"""Beyond one machine: several ``nnlab sweep`` processes share one sweep through PostgreSQL (Optuna's
RDB storage with heartbeats) and one MLflow tracking database. Skipped when no PostgreSQL runs on
127.0.0.1:5432."""

from __future__ import annotations

import collections
from pathlib import Path

import optuna
import pytest
from sweep_testkit import (
    all_runs,
    assert_exactly_once,
    child_runs,
    cli_env,
    client,
    finish,
    parent_runs,
    start,
    write_spec,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("sweep")]


def test_two_machines_share_one_sweep_on_postgresql(pg_databases: tuple[str, str], tmp_path: Path) -> None:
    storage, tracking = pg_databases
    spec = write_spec(tmp_path, "shared", {"grid": {"model.depth": [1, 2]},
                                           "tune": {"train.learning_rate": {"low": 1e-3, "high": 0.2, "log": True}},
                                           "trials": 3, "seeds": 2, "pruner": "none"})
    args = ["sweep", str(spec), "--storage", storage, "--tracking-uri", tracking, "--workers", "1"]
    # two "machines": separate local stores, the same PostgreSQL storage and tracking database
    machines = []
    for name in ("a", "b"):
        env = cli_env(tmp_path / name)
        machines.append(start(args, tmp_path / name, tmp_path, env=env))
    results = [finish(proc, timeout=240) for proc in machines]
    for code, out in results:
        assert code == 0, out

    runs = all_runs(client(tracking), "shared")
    assert_exactly_once(runs, 2 * (3 + 2))
    (parent,) = parent_runs(runs)
    assert parent.info.status == "FINISHED"
    workers = collections.Counter(r.data.tags["nnlab.pid"] for r in child_runs(runs))
    assert len(workers) == 2, f"one machine did all the work: {workers}"  # both shared the slots
    for depth in (1, 2):
        tune = optuna.load_study(study_name=f"shared/model.depth={depth}/tune", storage=storage.replace(
            "postgresql://", "postgresql+psycopg2://"))
        assert sorted(t.user_attrs["nnlab_slot"] for t in tune.trials if t.state.name == "COMPLETE") == [0, 1, 2]
        assert not [t for t in tune.trials if t.state.name in ("RUNNING", "WAITING")]
