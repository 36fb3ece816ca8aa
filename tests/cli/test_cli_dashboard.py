"""``nnlab dashboard NAME``: which storage it opens, one-line errors (exit 2) for a sweep without storage and
for the missing extra, and the real optuna-dashboard serving the sweep's studies on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from nnlab.cli import main
from nnlab.dashboard import resolve_storage, sweep_id_of

ROOT = Path(__file__).resolve().parents[2]
optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_sweep_studies(store: Path, sweep_id: str) -> None:
    """The studies a sweep leaves in the embedded journal (no training needed to open them)."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(store / "optuna.journal")))
    for name in (sweep_id, f"{sweep_id}/model.depth=1/tune", f"{sweep_id}/model.depth=1/confirm"):
        optuna.create_study(study_name=name, storage=storage)


def test_name_is_a_study_a_spec_or_a_sweep_id(write_spec):
    path = write_spec("name: from-file\ndata: {dataset: iris}\nprofiles: {quick: {train.epochs: 1}}\n")
    assert sweep_id_of(str(path), None) == "from-file"
    assert sweep_id_of(str(path), "quick") == "from-file@quick"
    assert sweep_id_of("depth", "quick") == "depth@quick"  # experiments/depth.yaml
    assert sweep_id_of("elsewhere@ci", None) == "elsewhere@ci"  # no such spec here: the id as given


def test_storage_is_the_journal_next_to_mlflow_db(store_dir):
    make_sweep_studies(store_dir, "demo")
    make_sweep_studies(store_dir, "other")
    opened, studies = resolve_storage("demo", None)
    assert opened.shown == str((store_dir / "optuna.journal").resolve())
    assert studies == ["demo", "demo/model.depth=1/confirm", "demo/model.depth=1/tune"]


def test_a_sweep_without_storage_is_one_line_exit_2(store_dir, capsys):
    assert main(["dashboard", "demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sweep demo has no Optuna storage here" in err[0] and "optuna.journal" in err[0]
    make_sweep_studies(store_dir, "other")
    assert main(["dashboard", "demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"nnlab dashboard: no sweep demo in {(store_dir / 'optuna.journal').resolve()} (it holds: other)"]


def test_the_missing_extra_is_one_line_exit_2(store_dir, capsys, monkeypatch):
    make_sweep_studies(store_dir, "demo")
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # as if not installed
    assert main(["dashboard", "demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs optuna-dashboard" in err[0] and "pip install -e '.[dashboard]'" in err[0]


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["dashboard"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["dashboard", "demo", "--port", "eighty"])
    assert info.value.code == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serves_the_sweeps_studies_on_loopback(store_dir, tmp_path):
    pytest.importorskip("optuna_dashboard")
    make_sweep_studies(store_dir, "demo")
    port = free_port()
    env = {**os.environ, "NNLAB_STORE": str(store_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "nnlab.cli", "dashboard", "demo", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        studies = None
        deadline = time.monotonic() + 60
        while studies is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as answer:
                    studies = json.load(answer)["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert studies is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert {s["study_name"] for s in studies} >= {"demo", "demo/model.depth=1/tune"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=5) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert out.startswith(f"optuna-dashboard on http://127.0.0.1:{port}/dashboard for sweep demo (3 studies in ")
