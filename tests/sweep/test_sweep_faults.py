"""Faults under a running sweep, with real parts: PostgreSQL dropping every connection for a few
seconds, four workers racing on the embedded store, and the artifact disk filling up."""

from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from sweep_testkit import (
    all_runs,
    assert_exactly_once,
    child_runs,
    cli_env,
    client,
    finish,
    journal,
    nnlab,
    start,
    write_spec,
)

from nnlab.errors import StoreFailed
from nnlab.sweep._storage import Reconnecting

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sweep")]

# a one-step traced train function: the cheapest run Keras makes (tracing dominates runs this small)
QUICK = {"epochs": 2, "steps_per_execution": 1}


# ------------------------------------------------------------------------------------------------
# PostgreSQL restarts mid-sweep


class Outage:
    """A TCP proxy in front of PostgreSQL that can cut every connection and refuse new ones for a while,
    as a database restart does."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.cut_connections = 0  # client connections closed by cut()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listening = threading.Event()
        self._listen()

    def _listen(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.1)
        self._listening.set()
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        with server:
            while self._listening.is_set():
                try:
                    client_side, _ = server.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                try:
                    upstream = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client_side.close()
                    continue
                upstream.settimeout(None)
                client_side.settimeout(None)
                with self._lock:
                    self._open.update((client_side, upstream))
                for src, dst in ((client_side, upstream), (upstream, client_side)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        """Close every proxied connection and refuse new ones (nothing listens) until ``restore``."""
        self._listening.clear()
        time.sleep(0.3)  # the accept loop sees the flag and closes the listening socket
        with self._lock:
            victims = list(self._open)
        self.cut_connections += len(victims) // 2
        for sock in victims:
            self._drop(sock)

    def restore(self) -> None:
        self._listen()

    def close(self) -> None:
        self._listening.clear()
        with self._lock:
            victims = list(self._open)
        for sock in victims:
            self._drop(sock)


def _lost(message: str = "server closed the connection unexpectedly") -> Exception:
    """What a dropped PostgreSQL connection raises through Optuna: a StorageInternalError caused by
    SQLAlchemy's OperationalError caused by psycopg2's."""
    import psycopg2
    import sqlalchemy.exc

    try:
        try:
            try:
                raise psycopg2.OperationalError(f"{message}\n\tThis probably means the server terminated abnormally")
            except psycopg2.OperationalError as exc:
                raise sqlalchemy.exc.OperationalError("SELECT 1", {}, exc) from exc
        except sqlalchemy.exc.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
    except optuna.exceptions.StorageInternalError as exc:
        return exc


def test_reconnecting_retries_lost_connections_announces_once_and_gives_up() -> None:
    said: list[str] = []
    policy = Reconnecting("postgresql://db/x", retry_for=0.5, first=0.01, longest=0.05, say=said.append)
    calls = []

    def flaky(fails: int) -> int:
        calls.append(1)
        if len(calls) <= fails:
            raise _lost()
        return 7

    assert policy.call(flaky, 3) == 7 and len(calls) == 4
    assert len(said) == 2 and "connection lost (server closed the connection unexpectedly)" in said[0]
    assert said[1].startswith("Optuna storage postgresql://db/x: reconnected after ")

    calls.clear()  # a call made inside a retried call is repeated by the outer one only
    assert policy.call(lambda: policy.call(flaky, 2)) == 7 and len(calls) == 3

    calls.clear()  # anything but a lost connection is raised at once
    with pytest.raises(ValueError):
        policy.call(lambda: calls.append(1) or int("x"))
    assert len(calls) == 1

    calls.clear()  # an outage longer than retry_for: one line, then later calls fail at their first error
    with pytest.raises(StoreFailed, match=r"^Optuna storage postgresql://db/x unreachable for \d+ s \(server closed"
                                          r" the connection unexpectedly\); every finished run is kept: run the "
                                          r"same command again to resume$"):
        policy.call(flaky, 10**6)
    tries = len(calls)
    assert tries > 3
    with pytest.raises(StoreFailed):
        policy.call(flaky, 10**6)
    assert len(calls) == tries + 1
    assert sum("connection lost" in line for line in said) == 3  # one line per outage: three outages


def _wait_until(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended before {what}"
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not {what} within {timeout} s")


def _finished(mlflow: Any, experiment: str) -> set[str]:
    try:
        return {r.info.run_id for r in child_runs(all_runs(mlflow, experiment)) if r.info.status == "FINISHED"}
    except Exception:  # noqa: BLE001 - the store is being created
        return set()


def _launch(args: list[str], store: Path, cwd: Path, output: Path, env: dict[str, str] | None = None,
            errors: Path | None = None) -> subprocess.Popen[str]:
    """``nnlab ARGS`` with its output in a file (readable while it runs); stderr apart when ``errors``."""
    with open(output, "w") as out, open(errors or os.devnull, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "nnlab.cli", *args], cwd=cwd, env=env or cli_env(store),
                                stdout=out, stderr=err if errors else subprocess.STDOUT, text=True)


def _outage_lines(text: str) -> list[str]:
    return ["lost" if "connection lost" in line else "back" for line in text.splitlines()
            if "connection lost" in line or "reconnected after" in line]


def _logs(store: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((store / "logs").glob("*.log")))


@pytest.fixture
def proxy() -> Iterator[Outage]:
    outage = Outage(("127.0.0.1", 5432))
    try:
        yield outage
    finally:
        outage.close()


@pytest.mark.postgres
def test_postgresql_restarts_mid_sweep_workers_retry_and_finish(pg_databases: tuple[str, str], proxy: Outage,
                                                                tmp_path: Path) -> None:
    storage, _ = pg_databases
    # 10 trials: runs this short must not all finish before the second outage begins
    through_proxy = storage.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    spec = write_spec(tmp_path, "pgoutage", {"tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1, "log": True}},
                                             "trials": 10, "seeds": 1, "sampler": "random", "pruner": "none"},
                      train=QUICK)
    store = tmp_path / "store"
    env = {**cli_env(store), "NNLAB_STORAGE_RETRY_S": "12"}
    args = ["sweep", str(spec), "--storage", through_proxy, "--workers", "2", "--progress", "lines"]
    mlflow = client(store)
    output = tmp_path / "sweep.out"
    sweep = _launch(args, store, tmp_path, output, env)
    try:
        # 1. a restart: every connection cut, new ones refused for 3 s; the sweep rides it out
        _wait_until(lambda: len(_finished(mlflow, "pgoutage")) >= 1, sweep, "a finished run")
        proxy.cut()
        time.sleep(3.0)
        proxy.restore()
        cut_first = proxy.cut_connections
        before = len(_finished(mlflow, "pgoutage"))
        _wait_until(lambda: "reconnected after" in output.read_text() and
                    len(_finished(mlflow, "pgoutage")) > before, sweep, "a run finished after the restart")
        # 2. an outage longer than the retries (12 s here): the sweep stops with one line
        proxy.cut()
        code = sweep.wait(timeout=240)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    out = output.read_text()
    logs = _logs(store)
    assert cut_first > 0
    assert code == 1, out + logs
    assert "Traceback" not in out + logs
    lost = [line for line in out.splitlines() if line.startswith("nnlab:")]
    assert len(lost) == 1 and re.search(r"unreachable for \d+ s \(.*refused.*\); every finished run is kept: "
                                        r"run the same command again to resume$", lost[0]), out
    # each outage is announced once by each process, and the end of the first one once
    assert _outage_lines(out) == ["lost", "back", "lost"], out
    workers = [_outage_lines(p.read_text()) for p in (store / "logs").glob("*.log")]
    assert ["lost", "back"] in [w[:2] for w in workers], logs
    assert all(w[0] == "lost" and all(a != b for a, b in zip(w, w[1:], strict=False)) for w in workers), logs
    assert "retrying with backoff for up to 12 s" in out
    runs = child_runs(all_runs(mlflow, "pgoutage"))
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = {r.info.run_id for r in runs if r.info.status == "FINISHED"}
    assert len(finished) >= 2 and not [r for r in runs if r.info.status == "FAILED"]

    # 3. the database is back: the same command finishes the sweep, each slot exactly once
    proxy.restore()
    code, out = finish(start(args, store, tmp_path, env=env), timeout=240)
    assert code == 0, out + _logs(store)
    runs = all_runs(mlflow, "pgoutage")
    assert_exactly_once(runs, 10 + 1)
    assert finished <= {r.info.run_id for r in child_runs(runs) if r.info.status == "FINISHED"}
    direct = storage.replace("postgresql://", "postgresql+psycopg2://")
    for phase, slots in (("tune", 10), ("confirm", 1)):
        trials = optuna.load_study(study_name=f"pgoutage/default/{phase}", storage=direct).trials
        assert sorted(t.user_attrs["nnlab_slot"] for t in trials if t.state.name == "COMPLETE") == list(range(slots))
        assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]


# ------------------------------------------------------------------------------------------------
# four workers on the embedded store


def test_four_workers_fifty_trials_on_the_embedded_store(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "crowd", {"tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1, "log": True}},
                                          "trials": 50, "seeds": 0, "sampler": "random", "pruner": "none"},
                      data={"n_samples": 200}, model={"width": 4}, train={**QUICK, "epochs": 1})
    store = tmp_path / "store"
    done = nnlab(["sweep", str(spec), "--workers", "4", "--recycle", "100", "--progress", "lines"], store,
                 tmp_path, timeout=400)
    logs = _logs(store)
    assert done.returncode == 0, done.stdout + done.stderr + logs
    assert "locked" not in (done.stdout + done.stderr + logs).lower()

    runs = all_runs(client(store), "crowd")
    assert_exactly_once(runs, 50)
    children = child_runs(runs)
    assert len(children) == 50 and {r.info.status for r in children} == {"FINISHED"}
    assert len({r.data.tags["nnlab.pid"] for r in children}) == 4  # every worker ran slots
    by_slot = {int(r.data.tags["nnlab.slot"].rsplit("/", 1)[1]): r for r in children}
    assert sorted(by_slot) == list(range(50))

    (study,) = [s for s in optuna.get_all_study_summaries(journal(store)) if s.study_name.endswith("/tune")]
    trials = optuna.load_study(study_name=study.study_name, storage=journal(store)).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 50  # no lost, failed or extra trial
    assert sorted(t.user_attrs["nnlab_slot"] for t in trials) == list(range(50))
    assert len({t.params["train.learning_rate"] for t in trials}) == 50
    for trial in trials:  # MLflow and Optuna agree on every slot: its trial, its value, its run
        run = by_slot[trial.user_attrs["nnlab_slot"]]
        assert run.data.tags["nnlab.trial"] == str(trial.number)
        assert run.info.run_id == trial.user_attrs["nnlab_run_id"]
        assert float(run.data.params["train.learning_rate"]) == pytest.approx(trial.params["train.learning_rate"])
        assert run.data.metrics["val_loss"] == pytest.approx(trial.value)


# ------------------------------------------------------------------------------------------------
# the artifact disk fills up


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted on ``tmp_path/store/artifacts``, the embedded store's artifact folder."""
    folder = tmp_path / "store" / "artifacts"
    folder.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write a file until the disk under ``folder`` has not one byte left."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return filler


def _artifacts(mlflow: object, run_id: str) -> set[str]:
    return {a.path for a in mlflow.list_artifacts(run_id)}  # type: ignore[attr-defined]


def test_full_artifact_disk_stops_the_sweep_cleanly_and_it_resumes(small_disk: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "diskfull", {"tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1, "log": True}},
                                             "trials": 4, "seeds": 1, "sampler": "random", "pruner": "none"},
                      train=QUICK)
    store = small_disk.parent
    args = ["sweep", str(spec), "--workers", "1", "--progress", "lines"]
    mlflow = client(store)
    sweep = _launch(args, store, tmp_path, tmp_path / "out.txt", errors=tmp_path / "err.txt")
    try:
        _wait_until(lambda: len(_finished(mlflow, "diskfull")) >= 2, sweep, "two finished runs")
        filler = _fill(small_disk)
        code = sweep.wait(timeout=240)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    stdout, stderr = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    logs = _logs(store)

    # one clear line, exit 1; the runs finished before are intact, the interrupted ones are KILLED
    assert code == 1, stdout + stderr + logs
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("nnlab:")]
    assert len(errors) == 1 and errors[0].startswith("nnlab: no space left on device while writing run "), stderr
    assert "run the same command again" in errors[0]
    runs = child_runs(all_runs(mlflow, "diskfull"))
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = {r.info.run_id for r in runs if r.info.status == "FINISHED"}
    assert len(finished) >= 2 and not [r for r in runs if r.info.status == "FAILED"]
    killed = [r for r in runs if r.info.status == "KILLED"]  # one, or the unfinished members of a cohort
    assert killed and all(r.data.tags["nnlab.status"] == "killed" and "no space" in r.data.tags["nnlab.error"]
                          for r in killed)
    for run_id in finished:
        assert {"spec.yaml", "model_summary.txt"} <= _artifacts(mlflow, run_id)

    # space freed: the same command finishes the rest, and nothing runs twice
    filler.unlink()
    again = nnlab(args, store, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    runs = all_runs(mlflow, "diskfull")
    assert_exactly_once(runs, 4 + 1)
    done = {r.info.run_id: r for r in child_runs(runs) if r.info.status == "FINISHED"}
    assert finished <= set(done)
    for run_id, run in done.items():
        wanted = {"spec.yaml", "model_summary.txt"} | ({"learning_curve.png"} if run.data.tags["nnlab.phase"] ==
                                                       "confirm" else set())
        assert wanted <= _artifacts(mlflow, run_id)
