"""Shared helpers of the nnlab.sweep tests: tiny specs, running the CLI, reading MLflow and Optuna back."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "data": {"dataset": "moons", "n_samples": 300},
    "model": {"family": "mlp", "depth": 1, "width": 8},
    "train": {"epochs": 2, "batch_size": 64, "diagnostics": False},
}


def write_spec(folder: Path, name: str, sweep: dict[str, Any], **sections: dict[str, Any]) -> Path:
    """A tiny moons spec named ``name`` with the given sweep section (and section overrides)."""
    body: dict[str, Any] = {"name": name}
    for key, value in TINY.items():
        body[key] = {**value, **sections.get(key, {})}
    body["sweep"] = sweep
    for key, value in sections.items():
        if key not in body:
            body[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def cli_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "MLFLOW_TRACKING_URI")}
    env["NNLAB_STORE"] = str(store)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def nnlab(args: list[str], store: Path, cwd: Path, timeout: float = 240,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nnlab.cli", *args], cwd=cwd, env=env or cli_env(store), text=True,
                          capture_output=True, timeout=timeout)


def start(args: list[str], store: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "nnlab.cli", *args], cwd=cwd, env=env or cli_env(store),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def client(store: Path | str) -> Any:
    from mlflow import MlflowClient

    uri = store if isinstance(store, str) else f"sqlite:///{Path(store).resolve()}/mlflow.db"
    return MlflowClient(tracking_uri=uri)


def all_runs(mlflow_client: Any, experiment: str) -> list[Any]:
    exp = mlflow_client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return list(mlflow_client.search_runs([exp.experiment_id], max_results=5000))


def child_runs(runs: list[Any]) -> list[Any]:
    return [r for r in runs if r.data.tags.get("nnlab.phase") in ("tune", "confirm")]


def parent_runs(runs: list[Any]) -> list[Any]:
    return [r for r in runs if r.data.tags.get("nnlab.phase") == "sweep"]


def outcomes(runs: list[Any]) -> collections.Counter[tuple[str, str, str]]:
    """(MLflow status, nnlab.status, phase) -> count, over child runs."""
    return collections.Counter((r.info.status, r.data.tags.get("nnlab.status", ""), r.data.tags["nnlab.phase"])
                               for r in child_runs(runs))


def assert_exactly_once(runs: list[Any], expected: int) -> None:
    """One recorded (not KILLED) run per slot, ``expected`` slots, nothing RUNNING."""
    children = [r for r in child_runs(runs) if r.data.tags.get("nnlab.superseded") != "true"]
    assert not [r for r in runs if r.info.status == "RUNNING"], "runs left RUNNING"
    recorded = [r for r in children if r.info.status in ("FINISHED", "FAILED")]
    slots = collections.Counter(r.data.tags["nnlab.slot"] for r in recorded)
    assert [s for s, n in slots.items() if n > 1] == [], f"duplicated slots: {slots}"
    assert len(recorded) == expected, f"{len(recorded)} recorded runs, expected {expected}: {sorted(slots)}"


def journal(store: Path) -> Any:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(store / "optuna.journal")))


def wait_for_running(mlflow_client: Any, experiment: str, *, count: int = 1, finished_first: int = 0,
                     timeout: float = 120, exclude: tuple[str, ...] = ()) -> list[Any]:
    """``count`` RUNNING child runs (not in ``exclude``), once ``finished_first`` child runs finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            runs = all_runs(mlflow_client, experiment)
        except Exception:  # noqa: BLE001 - the store is being created
            runs = []
        children = child_runs(runs)
        running = [r for r in children if r.info.status == "RUNNING" and r.info.run_id not in exclude]
        done = [r for r in children if r.info.status == "FINISHED"]
        if len(running) >= count and len(done) >= finished_first:
            return running[:count]
        time.sleep(0.2)
    raise AssertionError(f"not {count} RUNNING runs of {experiment} within {timeout} s")


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def children_of(pid: int) -> list[int]:
    """Process ids descended from ``pid`` (Linux /proc): its children, theirs, and so on."""
    out: list[int] = []
    for child in _children(pid):
        out += [child, *children_of(child)]
    return out


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def open_sweep(path: Path, folder: Path) -> Any:
    """A sweep of spec ``path`` opened as a coordinator opens it, on an embedded store in ``folder``:
    (plan, store, tracker, ledger, parent run id, a worker job for ``run_worker``)."""
    from nnlab.spec import Spec
    from nnlab.sweep._ledger import Ledger
    from nnlab.sweep._plan import build_plan
    from nnlab.sweep._storage import open_storage, resolve_target
    from nnlab.sweep._worker import WorkerJob
    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker

    plan = build_plan(Spec.from_yaml(path), None)
    store = resolve_store(None, str(folder / "store"))
    tracker = Tracker(store)
    ledger = Ledger(plan, open_storage(resolve_target(store, None)))
    parent = ledger.open(tracker, restart=False)
    job = WorkerJob(spec=str(path), overrides=[], profile=None, storage=None, tracking_uri=store.tracking_uri,
                    store_root=str(store.root), sweep_hash=plan.sweep_hash, parent_run_id=parent, max_runs=50)
    return plan, store, tracker, ledger, parent, job
