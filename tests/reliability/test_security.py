"""Secrets stay out of the store; names cannot escape it; the UI binds to this machine only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from nnlab.spec import Spec, SpecError
from nnlab.tracking import resolve_store
from nnlab.tracking._mlflow import Tracker
from nnlab.train import run_spec

SECRET = "nnlab-planted-secret-7f3a9c"


@pytest.mark.xdist_group("train")
def test_environment_secrets_are_not_logged(write_spec, monkeypatch, store_dir):
    monkeypatch.setenv("NNLAB_TEST_API_TOKEN", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    spec = Spec.from_yaml(write_spec("name: secrets\ndata: {dataset: iris}\nmodel: {depth: 1, width: 4}\n"
                                     "train: {epochs: 1}\n"))
    result = run_spec(spec, Tracker(resolve_store()))
    run = MlflowClient(resolve_store().tracking_uri).get_run(result.run_id)
    logged = [*run.data.params.items(), *run.data.tags.items(), *((k, "") for k in run.data.metrics)]
    assert not [kv for kv in logged if SECRET in kv[0] or SECRET in str(kv[1])]
    for path in Path(store_dir).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/b", "..", ".hidden", "a b", "x" * 200])
def test_names_cannot_leave_the_store(write_spec, name):
    with pytest.raises(SpecError, match="name"):
        Spec.from_yaml(write_spec(f"name: '{name}'\ndata: {{dataset: iris}}\n"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> list[str]:
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
    return [line.split()[3] for line in out.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(not Path("/usr/bin/ss").exists() and not Path("/bin/ss").exists(), reason="needs ss(8)")
def test_ui_binds_to_loopback_by_default(tmp_path):
    port = _free_port()
    # one server process (MLflow starts four by default): it binds the same address, and the socket listens
    # once one process has imported the app rather than once the first of four has, side by side on the cores
    env = {**os.environ, "NNLAB_STORE": str(tmp_path / "store"), "MLFLOW_WORKERS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nnlab.cli", "ui", "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.time() + 240  # MLflow UI start-up, slow on a loaded 2-core machine
        addresses: list[str] = []
        while time.time() < deadline and not addresses:
            time.sleep(0.5)
            addresses = _listening(port)
            assert proc.poll() is None, proc.communicate()
        assert addresses, "the UI never started listening"
        assert all(a.startswith(("127.0.0.1:", "[::1]:")) for a in addresses), addresses
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_ui_warns_for_other_hosts(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nnlab.cli", "ui", "--host", "0.0.0.0", "--port", str(port)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NNLAB_STORE": str(tmp_path / "store")}, start_new_session=True)
    try:
        line = proc.stderr.readline()
        assert "warning" in line and "0.0.0.0" in line and "authentication" in line
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
