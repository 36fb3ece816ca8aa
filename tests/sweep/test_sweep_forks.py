"""The fork server: workers forked after TensorFlow's import run, answer, exit and take signals as
spawned ones do, and a sweep's results do not depend on how its workers started."""

from __future__ import annotations

import json
import os
import select
import signal
import tempfile
import time
from pathlib import Path

import pytest
from sweep_testkit import all_runs, child_runs, cli_env, client, nnlab, write_spec

from nnlab.sweep._forks import ForkServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sweep")]


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def _read_line(fd: int, timeout: float = 120) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no answer within {timeout} s"
        chunk = os.read(fd, 65536)
        assert chunk, "closed without an answer"
        data += chunk
    return data


def test_forked_workers_preflight_wait_exit_and_take_signals(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "forked", {"trials": 1, "seeds": 0, "pruner": "none",
                                           "tune": {"train.learning_rate": {"low": 0.01, "high": 0.1}}})
    env = {**cli_env(tmp_path / "store"), "NNLAB_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as server_out:
        server = ForkServer(env, server_out.fileno())
        try:
            # asked for and killed before the server has even imported TensorFlow: the signal waits for the pid
            doomed_in = os.pipe()
            with tempfile.TemporaryFile() as out:
                doomed = server.fork(env, doomed_in[0], out.fileno())
            os.close(doomed_in[0])
            doomed.kill()
            assert doomed.pid is None and doomed.poll() is None

            # the preflight worker: forked as soon as TensorFlow is imported, it loads data and builds a model
            stdin, reply = os.pipe(), os.pipe()
            with tempfile.TemporaryFile() as out:
                worker = server.fork(env, stdin[0], out.fileno(), reply[1])
                os.close(stdin[0])
                os.close(reply[1])
                request = {"preflight": {"spec": str(spec), "overrides": [], "profile": None}}
                os.write(stdin[1], (json.dumps(request) + "\n").encode())
                answer = json.loads(_read_line(reply[0]))
                os.close(reply[0])
                assert answer == {"ok": True}, answer

                # it waits for its job: a child of the server, not of this process, in a session of its own
                assert worker.pid is not None and worker.poll() is None
                state = _stat(worker.pid)
                assert int(state[1]) == server.popen.pid != os.getpid()
                assert int(state[3]) == worker.pid

                # no job: it exits 0, and the server reports it
                os.close(stdin[1])
                assert worker.wait(timeout=60) == 0
                out.seek(0)
                assert b"Traceback" not in out.read()
            assert doomed.wait(timeout=60) == -signal.SIGKILL

            # a stop request to a waiting worker is kept: once its stdin closes it exits quietly, as a spawned one
            stdin = os.pipe()
            with tempfile.TemporaryFile() as out:
                waiting = server.fork(env, stdin[0], out.fileno())
                os.close(stdin[0])
                while waiting.pid is None:
                    time.sleep(0.05)
                waiting.send_signal(signal.SIGTERM)
                os.close(stdin[1])
                assert waiting.wait(timeout=60) in (0, -signal.SIGTERM)  # the latter if it beat the handler
        finally:
            server.close()
    assert server.popen.returncode == 0  # closing the socket ends the server


def test_a_sweep_gives_the_same_results_forked_and_spawned(tmp_path: Path) -> None:
    """Forked: two workers, so one is forked right after TensorFlow's import (it runs the preflight)
    and one once everything is imported. Spawned: one worker (the trials are seeded one by one, so
    the count of workers does not change them, and one fresh interpreter costs less than two)."""
    sweep = {"trials": 4, "seeds": 0, "pruner": "none", "sampler": "random",
             "tune": {"train.learning_rate": {"low": 0.005, "high": 0.2, "log": True}}}
    values = {}
    for mode, workers in (("fork", 2), ("spawn", 1)):
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
    assert values["fork"] == values["spawn"]
