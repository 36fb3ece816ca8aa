"""Worker processes from ``multiprocessing``: forked from its forkserver (TensorFlow, MLflow and Optuna
preloaded) or spawned, they answer a preflight, wait for their job in a session of their own, exit
quietly when not needed, and give a sweep the same results either way."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest
from sweep_testkit import all_runs, child_runs, cli_env, client, nnlab, write_spec

from nnlab.errors import SpecError
from nnlab.sweep._coordinator import WorkerPool

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sweep")]


def _session(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[3])


def test_forked_workers_preflight_wait_exit_and_take_signals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_spec(tmp_path, "forked", {"trials": 1, "seeds": 0, "pruner": "none",
                                           "tune": {"train.learning_rate": {"low": 0.01, "high": 0.1}}})
    pool = WorkerPool(size=3, gpus=[], log_dir=tmp_path / "logs", log_name="forked",
                      env={**cli_env(tmp_path / "store"), "PYTHONUNBUFFERED": "1"})
    assert pool.start_method() == "forkserver"
    pool.prestart()
    try:
        pool.preflight({"spec": str(spec), "overrides": [], "profile": None})  # worker 0 loads data, builds a model
        first, second, third = (pool.procs[i].process.pid for i in range(3))
        # waiting for a job, each in a session of its own, children of the forkserver, not of this process
        assert all(_session(pid) == pid for pid in (first, second, third))
        assert os.getpid() not in {int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                                   for pid in (first, second)}
        # a stop request to a waiting worker is kept: once it hears it is not needed, it exits quietly
        os.kill(third, signal.SIGTERM)
        pool.discard_waiting()
        assert pool.wait_all(60)
        assert not pool.procs and not (tmp_path / "logs").exists()  # nothing written anywhere
    finally:
        pool.kill_all()
        pool.shutdown()


def test_a_bad_first_cell_fails_the_preflight_with_its_one_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "badcell", {"seeds": 1}, data={"train_size": 100000})  # more than moons has
    pool = WorkerPool(size=1, gpus=[], log_dir=tmp_path / "logs", log_name="bad", env=cli_env(tmp_path / "store"))
    pool.prestart()
    try:
        with pytest.raises(SpecError, match="train_size") as info:
            pool.preflight({"spec": str(spec), "overrides": [], "profile": None})
        assert "\n" not in str(info.value).strip()
    finally:
        pool.discard_waiting()
        pool.wait_all(30)
        pool.kill_all()
        pool.shutdown()


def test_a_sweep_gives_the_same_results_forked_and_spawned(tmp_path: Path) -> None:
    """The trials are seeded one by one, so the count and the start of the workers do not change them;
    spawned with one worker (one fresh interpreter costs less than two). Two workers each train at most their
    share (two) as a cohort, one worker all four: the values agree within the float32 rounding of batched
    kernels."""
    sweep = {"trials": 4, "seeds": 0, "pruner": "none", "sampler": "random",
             "tune": {"train.learning_rate": {"low": 0.005, "high": 0.2, "log": True}}}
    values = {}
    for mode, workers in (("forkserver", 2), ("spawn", 1)):
        folder = tmp_path / mode
        folder.mkdir()
        spec = write_spec(folder, "worker_start", sweep, train={"seed": 3})  # the same sweep, its own store
        env = {**cli_env(folder), "NNLAB_WORKER_START": mode}
        done = nnlab(["sweep", str(spec), "--workers", str(workers)], folder, folder, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        runs = child_runs(all_runs(client(folder), "worker_start"))
        assert len(runs) == 4
        values[mode] = sorted((r.data.params["train.learning_rate"], r.data.metrics["val_loss"]) for r in runs)
        assert len({r.data.tags["nnlab.pid"] for r in runs}) == workers  # every worker ran
        sizes = {int(r.data.tags["nnlab.cohort_size"]) for r in runs}  # each worker takes at most its share
        assert max(sizes) <= 2 if workers == 2 else sizes == {4}
    assert [rate for rate, _ in values["forkserver"]] == [rate for rate, _ in values["spawn"]]
    for (_, a), (_, b) in zip(values["forkserver"], values["spawn"], strict=True):
        assert math.isclose(a, b, rel_tol=1e-5)


def test_a_gpu_that_tensorflow_cannot_use_stops_the_sweep_with_one_line(tmp_path: Path) -> None:
    """nvidia-smi lists a GPU, TensorFlow (no CUDA libraries here) sees none: the sweep must not go on
    silently on the CPU while it says it is pinned to GPU 0."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-5f0c2f4e-0000-0000-0000-000000000000)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    spec = write_spec(tmp_path, "nocuda", {"seeds": 1})
    env = {**cli_env(tmp_path / "store"), "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    done = nnlab(["sweep", str(spec)], tmp_path / "store", tmp_path, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "nvidia-smi lists 1 GPU (GPU-5f0c2f4e-0000-0000-0000-000000000000), but TensorFlow sees none" in line
    assert "make install GPU=1" in line
    assert "Traceback" not in done.stderr and not (tmp_path / "store" / "mlflow.db").exists()
