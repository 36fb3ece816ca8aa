"""``nnlab ui``: before MLflow's UI starts, experiments of older stores get their kind, and the links it prints
open each experiment on MLflow's model-training screens (its runs), not its GenAI overview."""

from __future__ import annotations

import subprocess

from nnlab.cli import main
from nnlab.tracking import resolve_store
from nnlab.tracking._mlflow import Tracker


def test_ui_prints_links_to_the_runs_of_each_experiment(monkeypatch, capsys):
    tracker = Tracker(resolve_store())
    tracker.start_run("study-a", run_name="a", tags={})
    old = tracker.client.create_experiment("older")  # made before nnlab tagged experiments
    tracker.client.create_run(old, tags={"nnlab.pid": "1"})
    started = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, env: started.append(cmd) or 0)
    assert main(["ui", "--port", "5999"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("MLflow UI on http://127.0.0.1:5999 for sqlite:///")
    a = tracker.experiment_id("study-a")
    assert f"  study-a: http://127.0.0.1:5999/#/experiments/{a}?workflowType=machine_learning" in out
    assert f"  older: http://127.0.0.1:5999/#/experiments/{old}?workflowType=machine_learning" in out
    assert started and started[0][1:4] == ["-m", "mlflow", "ui"] and "127.0.0.1" in started[0]
