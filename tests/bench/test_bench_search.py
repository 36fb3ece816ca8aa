"""Goal 13's pieces (``bench._search``): which runs count at equal wall time, and which settings a search chose."""

from __future__ import annotations

import sqlite3

import pytest

from bench._harness import BenchError
from bench._search import chosen, within


def test_only_runs_that_ended_within_the_time_count():
    ended = [(10.0, 0.30), (40.0, 0.12), (41.0, 0.10), (90.0, 0.05)]
    assert within(ended, 40.0) == 0.12
    assert within(ended, 41.0) == 0.10
    assert within(ended, 5.0) is None  # nothing had ended: no score, not the first run's


def _store(path, runs):
    """The three MLflow tables ``chosen`` reads, with (run id, phase, best_val_loss, depth, rate) rows."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE latest_metrics (run_uuid TEXT, key TEXT, value REAL)")
        conn.execute("CREATE TABLE tags (run_uuid TEXT, key TEXT, value TEXT)")
        conn.execute("CREATE TABLE params (run_uuid TEXT, key TEXT, value TEXT)")
        for run, phase, loss, depth, rate in runs:
            conn.execute("INSERT INTO tags VALUES (?, 'nnlab.phase', ?)", (run, phase))
            if loss is not None:
                conn.execute("INSERT INTO latest_metrics VALUES (?, 'best_val_loss', ?)", (run, loss))
            conn.execute("INSERT INTO params VALUES (?, 'model.depth', ?)", (run, str(depth)))
            conn.execute("INSERT INTO params VALUES (?, 'train.learning_rate', ?)", (run, str(rate)))
    return path


def test_the_choice_is_the_tune_run_with_the_lowest_best_val_loss(tmp_path):
    db = _store(tmp_path / "mlflow.db", [("a", "tune", 0.20, 1, 0.01), ("b", "tune", 0.11, 3, 0.002),
                                         ("c", "confirm", 0.05, 4, 0.1), ("d", "tune", None, 2, 0.5)])
    assert chosen(db) == {"model.depth": 3, "train.learning_rate": 0.002}  # a confirm run is not a choice


def test_a_store_without_a_scored_tune_run_is_an_error(tmp_path):
    db = _store(tmp_path / "mlflow.db", [("c", "confirm", 0.05, 4, 0.1)])
    with pytest.raises(BenchError, match="no tune run"):
        chosen(db)
