"""What a run's final metrics describe: the generalization gap against training examples evaluated like
the validation set, the model early stopping kept, and the chance level logged on every path."""

from __future__ import annotations

import math

import pytest
from mlflow import MlflowClient

from nnlab.errors import TrialFailed
from nnlab.spec import Spec
from nnlab.tracking import resolve_store
from nnlab.tracking._mlflow import Tracker
from nnlab.train import best_epoch, execute, prepare, run_spec

TINY = """
name: final
data:
  dataset: digits_flat
  train_size: 200
model:
  depth: 2
  width: 8
train:
  epochs: 3
  batch_size: 32
  diagnostics: false
"""

pytestmark = pytest.mark.xdist_group("train")


@pytest.fixture
def tracker():
    return Tracker(resolve_store())


def _client() -> MlflowClient:
    return MlflowClient(resolve_store().tracking_uri)


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_gap_compares_validation_with_training_examples_evaluated_alike(write_spec):
    """Dropout 0.5 on 1,800 training examples of a teacher task, 3 epochs: no real overfitting. Keras's
    running training loss (dropout on) sits far above the validation loss; the same model evaluated on
    training examples in inference mode does not."""
    spec = Spec.from_yaml(write_spec("""
        name: gap
        data: {dataset: teacher, n_samples: 3000, noise: 0.1}
        model: {depth: 2, width: 32, dropout: 0.5}
        train: {epochs: 3, batch_size: 64, diagnostics: false}
    """))
    result = run_spec(spec, None, figures=False)
    m = result.metrics
    old_gap = m["val_loss"] - m["loss"]
    assert abs(m["gap_loss"]) < 0.05, m
    assert abs(old_gap) > 0.2 and abs(old_gap) > 5 * abs(m["gap_loss"]), m
    assert m["gap_loss"] == m["val_loss"] - m["train_eval_loss"]
    assert m["gap_accuracy"] == m["train_eval_accuracy"] - m["val_accuracy"]
    assert abs(m["gap_accuracy"]) < 0.05 < abs(m["accuracy"] - m["val_accuracy"])
    for key in ("train_eval_loss", "train_eval_accuracy", "loss", "accuracy"):  # per epoch, like val_*
        assert len(result.history[key]) == 3, key
    assert m["chance_accuracy"] == pytest.approx(1 / 3)


def test_regression_runs_get_train_eval_errors_and_their_gap(write_spec):
    spec = Spec.from_yaml(write_spec("""
        name: reg
        data: {dataset: function, n_samples: 200}
        model: {depth: 1, width: 8, activation: tanh}
        train: {epochs: 2, diagnostics: false}
    """))
    result = run_spec(spec, None, figures=False)
    m = result.metrics
    assert len(result.history["train_eval_mae"]) == len(result.history["train_eval_mse"]) == 2
    assert m["gap_mae"] == m["val_mae"] - m["train_eval_mae"]
    assert m["gap_loss"] == m["val_loss"] - m["train_eval_loss"]
    assert "gap_accuracy" not in m and "chance_accuracy" not in m


def test_early_stopping_scores_the_restored_model(write_spec, tracker):
    """A learning rate high enough that validation loss rises again before patience runs out: every final
    metric is the best epoch's, MLflow's latest val_loss is the minimum of its history, test_* differ from
    the last epoch's model, and ``restore_best: false`` keeps the last epoch's values."""
    spec = Spec.from_yaml(write_spec(TINY), ["model.width=64", "train.learning_rate=0.02", "train.epochs=6",
                                             "train.early_stopping=100"])
    restored = run_spec(spec, tracker, figures=False)
    last = run_spec(spec.with_values({"train.restore_best": False}), tracker, figures=False)
    losses = restored.history["val_loss"]
    assert losses == last.history["val_loss"] and len(losses) == 6
    best = min(range(6), key=losses.__getitem__)
    assert best < 5 and losses[5] > losses[best], f"this case needs a worse last epoch: {losses}"

    assert restored.best_epoch == best == best_epoch(losses)
    for key in ("val_loss", "val_accuracy", "train_eval_loss", "train_eval_accuracy", "loss", "accuracy"):
        assert restored.metrics[key] == restored.history[key][best], key
        assert last.metrics[key] == last.history[key][5], key
    assert restored.metrics["gap_loss"] == restored.metrics["val_loss"] - restored.metrics["train_eval_loss"]
    assert restored.metrics["test_loss"] != last.metrics["test_loss"]
    assert restored.metrics["epochs_trained"] == 6

    client = _client()
    run = client.get_run(restored.run_id)
    assert run.data.tags["nnlab.best_epoch"] == str(best)
    history = _history(client, restored.run_id, "val_loss")
    assert [step for step, _ in history] == list(range(7))  # 6 epochs, then the kept model's value at step 6
    assert run.data.metrics["val_loss"] == min(v for _, v in history) == losses[best]
    assert run.data.metrics["train_eval_loss"] == restored.history["train_eval_loss"][best]
    assert run.data.metrics["test_loss"] == restored.metrics["test_loss"]

    other = client.get_run(last.run_id)
    assert "nnlab.best_epoch" not in other.data.tags
    assert other.data.metrics["val_loss"] == losses[5] > min(losses)


def test_early_stopping_that_stops_keeps_the_best_epoch(write_spec):
    spec = Spec.from_yaml(write_spec(TINY), ["train.learning_rate=0.05", "train.epochs=30",
                                             "train.early_stopping=1"])
    result = run_spec(spec, None, figures=False)
    losses = result.history["val_loss"]
    assert result.epochs < 30 and result.best_epoch == result.epochs - 2  # patience 1: one worse epoch
    assert result.metrics["val_loss"] == min(losses) < losses[-1]


def test_best_epoch_follows_keras_early_stopping() -> None:
    assert best_epoch([0.5, 0.3, 0.3, 0.4]) == 1  # the first of equal values: a tie is no improvement
    assert best_epoch([math.nan, 0.4, 0.2, math.inf]) == 2  # NaN never improves
    assert best_epoch([math.nan, math.nan]) == 0  # no finite value: Keras keeps the first epoch's weights
    assert best_epoch([]) is None


def test_chance_accuracy_is_logged_whatever_the_outcome(write_spec, tracker):
    """Reports count a diverged or failed classification run at chance: the level is on every run."""
    spec = Spec.from_yaml(write_spec(TINY), ["train.epochs=1"])
    completed = run_spec(spec, tracker, figures=False)
    # as in test_train_run: seed 1 makes this tiny net's loss explode instead of sticking
    diverged = run_spec(spec.with_values({"train.optimizer": "sgd", "train.learning_rate": 1000.0,
                                          "train.epochs": 5, "train.seed": 1}), tracker, figures=False)
    assert diverged.status == "diverged"

    def explode(epoch: int, metrics: dict[str, float]) -> bool:
        raise RuntimeError("boom at epoch end")

    with pytest.raises(TrialFailed, match="boom"):
        execute(prepare(spec), tracker, epoch_hook=explode)
    client = _client()
    runs = client.search_runs([client.get_experiment_by_name("final").experiment_id])
    assert sorted(r.data.tags["nnlab.status"] for r in runs) == ["completed", "diverged", "failed"]
    for run in runs:
        assert run.data.metrics["chance_accuracy"] == pytest.approx(0.1), run.data.tags["nnlab.status"]
    assert completed.metrics["chance_accuracy"] == pytest.approx(0.1)
