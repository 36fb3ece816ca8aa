"""The tracker of `nnlab run` in a helper process: same records, nothing written before open."""

from __future__ import annotations

import os

import pytest
from mlflow import MlflowClient

from nnlab.errors import FatalError
from nnlab.tracking import resolve_store, start_tracker
from nnlab.tracking._remote import LocalTracker, RemoteTracker
from nnlab.train._figures import learning_curve


def test_a_run_through_the_helper_is_recorded_whole(store_dir):
    store = resolve_store()
    with start_tracker(store) as tracker:
        assert isinstance(tracker, RemoteTracker)
        tracker.open()
        run_id = tracker.start_run("remote", run_name="r", tags={"nnlab.phase": "run"})
        tracker.log_params(run_id, {"model.depth": 2, "data.classes": None})
        history = {"loss": [], "val_loss": []}
        for epoch in range(5):
            values = {"loss": 1.0 / (epoch + 1), "val_loss": 1.2 / (epoch + 1), "grad_norm/hidden_01": 0.5}
            tracker.log_epoch(run_id, values, step=epoch)
            history["loss"].append(values["loss"])
            history["val_loss"].append(values["val_loss"])
        tracker.log_text(run_id, "hello", "note.txt")
        tracker.log_drawn(run_id, "learning_curve.png", learning_curve, history, "remote")
        tracker.log_metrics(run_id, {"test_loss": 0.3}, step=4, heartbeat=False)
        tracker.set_tags(run_id, {"nnlab.status": "completed"})
        tracker.end_run(run_id, "FINISHED")
    client = MlflowClient(store.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["nnlab.pid"] == str(os.getpid())  # the command's pid, not the helper's
    assert run.data.tags["nnlab.status"] == "completed"
    assert run.data.params == {"model.depth": "2"}  # a None param is not logged: no "null" params
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [0, 1, 2, 3, 4]
    assert run.data.metrics["test_loss"] == 0.3 and "grad_norm/hidden_01" in run.data.metrics
    assert {a.path for a in client.list_artifacts(run_id)} == {"note.txt", "learning_curve.png"}


def test_nothing_is_created_before_open(tmp_path):
    store = resolve_store(store=str(tmp_path / "fresh"))
    tracker = start_tracker(store)
    tracker.close()  # as when the spec's data fail to load
    assert not (tmp_path / "fresh").exists()


def test_an_unusable_store_fails_at_open(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    store = resolve_store(f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}")
    with start_tracker(store) as tracker, pytest.raises(FatalError, match="not usable"):
        tracker.open()


def test_the_helper_can_be_turned_off(monkeypatch, store_dir):
    monkeypatch.setenv("NNLAB_TRACKING_HELPER", "0")
    with start_tracker(resolve_store()) as tracker:
        assert isinstance(tracker, LocalTracker)
        tracker.open()
        run_id = tracker.start_run("local", run_name="l", tags={})
        tracker.log_epoch(run_id, {"loss": 1.0}, step=0)
        tracker.end_run(run_id, "FINISHED")
    client = MlflowClient(resolve_store().tracking_uri)
    assert len(client.get_metric_history(run_id, "loss")) == 1
