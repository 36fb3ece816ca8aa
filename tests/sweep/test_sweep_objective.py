"""The Optuna objective of a run: the kept model's value, as the run's own final metrics state it, also
for a run adopted from MLflow whose history ends with the final values at step = epochs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_testkit import write_spec

from nnlab.spec import Spec
from nnlab.sweep._worker import objective_value

HISTORY = {"val_loss": [0.5, 0.3, 0.4, 0.3], "val_accuracy": [0.70, 0.90, 0.80, 0.95]}


def _spec(tmp_path: Path, **train: object) -> Spec:
    return Spec.from_yaml(write_spec(tmp_path, "objective", {"seeds": 1}, train=train))


@pytest.mark.parametrize("objective, expected", [("val_loss", 0.3), ("val_accuracy", 0.90)])
def test_restored_runs_are_scored_at_their_best_epoch(tmp_path: Path, objective: str, expected: float) -> None:
    spec = _spec(tmp_path, early_stopping=2)
    # epoch 1 is the first lowest val_loss, as Keras's EarlyStopping restores it; the run's final
    # metrics say the same, an old run's (last epoch's) do not: both give the best epoch's value
    kept = {"val_loss": 0.3, "val_accuracy": 0.90, "test_loss": 0.35}
    last = {"val_loss": 0.3, "val_accuracy": 0.95, "test_loss": 0.35}
    assert objective_value(spec, objective, kept, HISTORY, 4) == expected
    assert objective_value(spec, objective, last, HISTORY, 4) == expected
    # adopted from MLflow: the kept values follow the epochs at step 4, and are not an epoch
    adopted = {key: [*values, kept[key]] for key, values in HISTORY.items()}
    assert objective_value(spec, objective, kept, adopted, 4) == expected
    assert objective_value(spec, "test_loss", kept, adopted, 4) == 0.35  # evaluated after the restore


def test_runs_that_keep_their_last_weights_are_scored_at_the_end(tmp_path: Path) -> None:
    metrics = {"val_loss": 0.3, "val_accuracy": 0.95}
    for spec in (_spec(tmp_path), _spec(tmp_path, early_stopping=2, restore_best=False)):
        assert objective_value(spec, "val_accuracy", metrics, HISTORY, 4) == 0.95
