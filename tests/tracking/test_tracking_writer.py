"""The background writer of per-epoch metrics: nothing lost, batched, errors handed back once."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from nnlab.tracking._mlflow import EpochWriter


class FakeStore:
    def __init__(self, fail_on: int | None = None) -> None:
        self.writes: list[tuple[str, list[int], list[str]]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def write(self, run_id: str, metrics: list, tags: list) -> None:
        with self.lock:
            if self.fail_on is not None and len(self.writes) == self.fail_on:
                self.fail_on = None
                raise RuntimeError("store is gone")
            self.writes.append((run_id, [m.step for m in metrics], [t.value for t in tags]))


def metric(step: int) -> SimpleNamespace:
    return SimpleNamespace(step=step)


def beat(value: str) -> SimpleNamespace:
    return SimpleNamespace(key="nnlab.heartbeat", value=value)


def test_flush_writes_every_epoch_in_order_and_batches_the_backlog():
    store = FakeStore()
    writer = EpochWriter(store.write, interval=3600.0)  # nothing is written before the flush
    for step in range(10):
        writer.put("run", [metric(step)], [beat(str(step))])
    writer.flush()
    assert store.writes == [("run", list(range(10)), ["9"])]  # one batch, only the newest heartbeat


def test_runs_are_kept_apart():
    store = FakeStore()
    writer = EpochWriter(store.write, interval=3600.0)
    writer.put("a", [metric(0)], [])
    writer.put("b", [metric(0)], [])
    writer.put("a", [metric(1)], [])
    writer.flush()
    by_run: dict[str, list[int]] = {}
    for run_id, batch, _ in store.writes:
        by_run.setdefault(run_id, []).extend(batch)
    assert by_run == {"a": [0, 1], "b": [0]}


def test_a_failed_write_is_raised_once_by_the_next_call():
    store = FakeStore(fail_on=0)
    writer = EpochWriter(store.write, interval=0.0)
    writer.put("run", [metric(0)], [])
    with pytest.raises(RuntimeError, match="store is gone"):
        writer.flush()
    writer.put("run", [metric(1)], [])
    writer.flush()
    assert [batch for _, batch, _ in store.writes] == [[1]]


def test_queued_epochs_are_written_without_a_flush_once_the_interval_passed():
    store = FakeStore()
    writer = EpochWriter(store.write, interval=0.0)
    writer.put("run", [metric(0)], [])
    for _ in range(200):  # the background thread writes on its own (no timing is asserted)
        with store.lock:
            if store.writes:
                break
        threading.Event().wait(0.05)
    assert store.writes == [("run", [0], [])]


def test_flush_without_anything_queued_returns():
    EpochWriter(FakeStore().write, interval=1.0).flush()


def test_take_hands_one_runs_queue_to_the_caller_and_leaves_the_others():
    store = FakeStore()
    writer = EpochWriter(store.write, interval=3600.0)
    for step in range(3):
        writer.put("a", [metric(step)], [beat(str(step))])
    writer.put("b", [metric(0)], [])
    metrics, tags = writer.take("a")
    assert [m.step for m in metrics] == [0, 1, 2] and [t.value for t in tags] == ["2"]
    assert writer.take("a") == ([], [])
    writer.flush()
    assert store.writes == [("b", [0], [])]  # a's epochs are the caller's to write now, b's still written


def test_take_raises_a_failed_background_write():
    store = FakeStore(fail_on=0)
    writer = EpochWriter(store.write, interval=0.0)
    writer.put("run", [metric(0)], [])
    for _ in range(200):  # until the background write has failed
        with writer._cond:
            if writer._error is not None:
                break
        threading.Event().wait(0.05)
    with pytest.raises(RuntimeError, match="store is gone"):
        writer.take("run")


def test_a_runs_last_metrics_go_out_with_its_queued_epochs_in_one_write(store_dir):
    from mlflow import MlflowClient

    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker

    store = resolve_store()
    tracker = Tracker(store)
    run_id = tracker.start_run("writer", run_name="r", tags={"nnlab.phase": "run"})
    tracker.flush()
    for epoch in range(5):  # queued: the writer's interval is far longer than this loop
        tracker.log_epoch(run_id, {"loss": 1.0 / (epoch + 1), "val_loss": 2.0 / (epoch + 1)}, step=epoch)
    batches: list[int] = []
    inner = tracker.client.log_batch

    def counted(run: str, metrics: list = (), **kwargs: object) -> None:
        batches.append(len(metrics))
        inner(run, metrics=metrics, **kwargs)

    tracker.client.log_batch = counted
    tracker.log_metrics(run_id, {"test_loss": 0.25}, step=4, heartbeat=False)
    assert batches == [11]  # 5 epochs x 2 values and the final value, one transaction
    tracker.end_run(run_id, "FINISHED")
    client = MlflowClient(store.tracking_uri)
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [0, 1, 2, 3, 4]
    run = client.get_run(run_id)
    assert run.data.metrics["test_loss"] == 0.25 and "nnlab.heartbeat" in run.data.tags
