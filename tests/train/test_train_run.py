"""A tiny run end to end, read back from a real MLflow store."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from nnlab.errors import TrialFailed
from nnlab.spec import Spec
from nnlab.tracking import resolve_store
from nnlab.tracking._mlflow import Tracker
from nnlab.train import execute, prepare, run_spec

TINY = """
name: tiny
data:
  dataset: digits_flat
  train_size: 200
model:
  depth: 2
  width: 8
train:
  epochs: 3
  batch_size: 32
"""

pytestmark = pytest.mark.xdist_group("train")


@pytest.fixture
def tracker():
    return Tracker(resolve_store())


def test_run_is_logged_with_params_metrics_tags_and_artifacts(write_spec, tracker):
    spec = Spec.from_yaml(write_spec(TINY))
    result = run_spec(spec, tracker)
    assert result.status == "completed"
    client = MlflowClient(resolve_store().tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "tiny"
    params = run.data.params
    assert params == {**{key: str(value) for key, value in spec.flat_params(applicable=True).items()},
                      "data.n_train": "200"}
    assert params["model.depth"] == "2" and params["data.dataset"] == "digits_flat"
    tags = run.data.tags
    assert tags["nnlab.phase"] == "run"
    assert tags["nnlab.status"] == "completed"
    assert tags["nnlab.spec_hash"] == spec.spec_hash()
    assert tags["nnlab.keras_version"] and tags["nnlab.tensorflow_version"]
    assert tags["nnlab.device"].startswith(("cpu", "gpu"))
    assert tags["mlflow.source.name"] == spec.source and tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.user"] and "mlflow.source.git.commit" in tags
    history = client.get_metric_history(result.run_id, "val_loss")
    # the 3 epochs, then the kept model's value at step 3 (= epochs trained): MLflow's latest is the kept model's
    assert [m.step for m in history] == [0, 1, 2, 3]
    assert history[3].value == history[2].value == run.data.metrics["val_loss"]  # no early stopping: the last
    metrics = run.data.metrics
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "test_loss", "test_accuracy", "grad_norm/hidden_01",
                "grad_norm/hidden_02", "dead_units", "train_eval_loss", "train_eval_accuracy", "gap_loss",
                "gap_accuracy", "chance_accuracy"):
        assert key in metrics, key
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"spec.yaml", "model_summary.txt", "learning_curve.png"} <= artifacts
    spec_text = open(client.download_artifacts(result.run_id, "spec.yaml")).read()
    assert Spec.from_dict(__import__("yaml").safe_load(spec_text)).flat_params() == spec.flat_params()


def test_same_spec_and_seed_give_identical_metrics(write_spec):
    spec = Spec.from_yaml(write_spec(TINY))
    first = run_spec(spec, None, figures=False)
    second = run_spec(spec, None, figures=False)
    assert first.history["loss"] == second.history["loss"]
    assert first.metrics["test_loss"] == second.metrics["test_loss"]
    other = run_spec(spec.with_values({"train.seed": 7}), None, figures=False)
    assert other.history["loss"] != first.history["loss"]


def test_regression_run_logs_regression_metrics(write_spec):
    spec = Spec.from_yaml(write_spec("""
        name: reg
        data: {dataset: function, n_samples: 200, ood_range: [-2, 2]}
        model: {depth: 1, width: 8, activation: tanh}
        train: {epochs: 2}
    """))
    result = run_spec(spec, None, figures=False)
    for key in ("mae", "val_mae", "test_mae", "ood_mae", "saturated_units"):
        assert key in result.metrics, key
    assert "accuracy" not in result.metrics


def test_diverging_run_is_marked_not_crashed(write_spec, tracker):
    # seed 1: with seed 0 the first batches kill every unit of this tiny net, and its loss then sticks
    # near 500 instead of exploding (which seed does depends on the batch order)
    spec = Spec.from_yaml(write_spec(TINY), ["train.optimizer=sgd", "train.learning_rate=1000",
                                             "train.epochs=5", "train.seed=1"])
    result = run_spec(spec, tracker)
    assert result.status == "diverged"
    assert result.epochs < 5 or not math.isfinite(result.metrics.get("loss", float("nan")))
    run = MlflowClient(resolve_store().tracking_uri).get_run(result.run_id)
    assert run.data.tags["nnlab.status"] == "diverged"
    assert run.info.status == "FINISHED"
    assert "test_loss" not in run.data.metrics


def test_exception_in_a_run_is_recorded_as_failed(write_spec, tracker):
    spec = Spec.from_yaml(write_spec(TINY))

    def explode(epoch, metrics):
        raise RuntimeError("boom at epoch end")

    with pytest.raises(TrialFailed, match="boom"):
        execute(prepare(spec), tracker, epoch_hook=explode)
    client = MlflowClient(resolve_store().tracking_uri)
    exp = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["nnlab.status"] == "failed"
    assert "boom" in run.data.tags["nnlab.error"]


def test_epoch_hook_prunes(write_spec, tracker):
    spec = Spec.from_yaml(write_spec(TINY), ["train.epochs=6"])
    result = execute(prepare(spec), tracker, epoch_hook=lambda epoch, metrics: epoch >= 1)
    assert result.status == "pruned" and result.epochs == 2


def test_runs_of_dead_processes_are_marked_killed(write_spec, tracker):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run_id = tracker.start_run("tiny", run_name="ghost", tags={"nnlab.phase": "run"})
    tracker.set_tags(run_id, {"nnlab.pid": str(gone.pid), "nnlab.proc_start": ""})
    alive = tracker.start_run("tiny", run_name="alive", tags={"nnlab.phase": "run"})
    reaped = tracker.reap_stale_runs()
    assert reaped == [run_id]
    client = MlflowClient(resolve_store().tracking_uri)
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.get_run(alive).info.status == "RUNNING"
    assert os.getpid() == int(client.get_run(alive).data.tags["nnlab.pid"])


def _start_long_run(path, log_path):
    """``nnlab run`` of a 400-epoch TINY in its own process, its output in ``log_path``. The store is
    created first, so the test's reads never meet a database still being made."""
    Tracker(resolve_store())
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "nnlab.cli", "run", str(path)], stdout=log,
                                stderr=subprocess.STDOUT, text=True)


def _logging_run(client, proc, log_path, timeout: float = 180):
    """The run of ``proc`` once it has logged an epoch; fails with the process's output if it ended
    first or never got there."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = proc.poll() is not None
        exp = client.get_experiment_by_name("tiny")
        if exp is not None:
            running = [r for r in client.search_runs([exp.experiment_id]) if r.data.metrics.get("loss")]
            if running:
                return running[0]
        if ended:
            raise AssertionError(f"nnlab run ended ({proc.returncode}) before logging an epoch:\n"
                                 f"{log_path.read_text()[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    raise AssertionError(f"nnlab run logged no epoch within {timeout} s:\n{log_path.read_text()[-3000:]}")


def test_killed_run_process_leaves_nothing_running(write_spec, tmp_path):
    """SIGKILL a real 'nnlab run' mid-training; the next command marks its run KILLED."""
    import signal

    path = write_spec(TINY.replace("epochs: 3", "epochs: 400"))
    log_path = tmp_path / "run.log"
    proc = _start_long_run(path, log_path)
    client = MlflowClient(resolve_store().tracking_uri)
    running = _logging_run(client, proc, log_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert client.get_run(running.info.run_id).info.status == "RUNNING"
    # the next command, in this process: a second process would only import TensorFlow again
    from nnlab.cli import main

    handler = signal.getsignal(signal.SIGTERM)
    try:
        assert main(["run", str(path), "train.epochs=1"]) == 0
    finally:
        signal.signal(signal.SIGTERM, handler)  # main() makes SIGTERM unwind like Ctrl-C
    killed = client.get_run(running.info.run_id)
    assert killed.info.status == "KILLED" and killed.data.tags["nnlab.status"] == "killed"


def test_sigterm_ends_the_run_killed(write_spec, tmp_path):
    import signal

    path = write_spec(TINY.replace("epochs: 3", "epochs: 400"))
    log_path = tmp_path / "run.log"
    proc = _start_long_run(path, log_path)
    client = MlflowClient(resolve_store().tracking_uri)
    running = _logging_run(client, proc, log_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130, log_path.read_text()[-3000:]
    run = client.get_run(running.info.run_id)
    assert run.info.status == "KILLED" and run.data.tags["nnlab.status"] == "killed"


def test_restore_best_keeps_the_best_epochs_weights_even_without_stopping_early(write_spec):
    """Keras 3 restores the best weights at the end of training even when patience never ran out;
    the sweep's objective (the best epoch's value) relies on it."""
    base = Spec.from_yaml(write_spec(TINY), ["train.epochs=5", "train.early_stopping=100"])
    # the first setting whose validation loss is lowest before the last epoch
    for rate, seed in [(rate, seed) for seed in range(4) for rate in (0.05, 0.1, 0.2)]:
        spec = base.with_values({"train.learning_rate": rate, "train.seed": seed})
        restored = run_spec(spec, None, figures=False)
        losses = restored.history["val_loss"]
        if min(range(5), key=losses.__getitem__) < 4:
            break
    assert min(range(5), key=losses.__getitem__) < 4, f"this case needs a best epoch before the last: {losses}"
    last = run_spec(spec.with_values({"train.restore_best": False}), None, figures=False)
    assert losses == last.history["val_loss"] and len(losses) == 5  # never stopped early
    assert restored.metrics["test_loss"] != last.metrics["test_loss"]


@pytest.mark.parametrize("model", [
    "{family: mlp, depth: 3, width: 8, normalization: batch, residual: true, dropout: 0.1}",
    "{family: cnn, depth: 2, width: 4}",
])
def test_the_train_step_is_traced_once_and_results_match_kerass_own_lazy_build(write_spec, model, monkeypatch):
    """Optimizer slots and metric state are built before fit, so the train step's first trace creates no
    variables and TensorFlow does not trace it again; the run's numbers equal those of Keras building them
    itself inside the trace."""
    from nnlab.train import _runner

    spec = Spec.from_yaml(write_spec(f"""
        name: traced
        data: {{dataset: {'digits' if 'cnn' in model else 'digits_flat'}, train_size: 120}}
        model: {model}
        train: {{epochs: 2, batch_size: 32}}
    """))
    traces: list[int] = []

    def counted(prepared):
        step = prepared.model.train_step

        def train_step(data):  # runs once per trace of the train function
            traces.append(1)
            return step(data)

        prepared.model.train_step = train_step
        return prepared

    eager = _runner.execute(counted(prepare(spec)), None, figures=False)
    assert len(traces) == 1
    traces.clear()
    monkeypatch.setattr(_runner, "_build_state", lambda model, data: None)
    lazy = _runner.execute(counted(prepare(spec)), None, figures=False)
    assert len(traces) == 2  # what the eager build saves: Keras's variables made in the first trace
    assert eager.history["loss"] == lazy.history["loss"]
    assert eager.history["val_loss"] == lazy.history["val_loss"]
    assert eager.metrics["test_loss"] == lazy.metrics["test_loss"]
