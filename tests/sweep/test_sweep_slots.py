"""Exactly-once bookkeeping on Optuna trials, with two storage handles on one journal file standing
in for two processes. No training."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.trial import TrialState

from nnlab.spec import Spec
from nnlab.sweep._ledger import best_trial
from nnlab.sweep._slots import (
    OWNER,
    SLOT,
    STATUS,
    claim,
    duplicate_of,
    enqueue_slots,
    finish,
    give_back,
    reconcile,
    slot_views,
)
from nnlab.sweep._worker import objective_value

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _storage(path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


@pytest.fixture
def two(tmp_path: Path) -> tuple[optuna.Study, optuna.Study]:
    path = tmp_path / "optuna.journal"
    a = optuna.create_study(study_name="s/cell/tune", storage=_storage(path))
    enqueue_slots(a, range(3))
    b = optuna.load_study(study_name="s/cell/tune", storage=_storage(path))
    return a, b


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_waiting_trial_is_claimed_once(two: tuple[optuna.Study, optuna.Study]) -> None:
    a, b = two
    waiting = a.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs[SLOT] for t in waiting] == [0, 1, 2]
    first = waiting[0]
    assert claim(a, first) is True
    assert claim(b, b.get_trials()[0]) is False  # the other process lost the race
    assert claim(b, b.get_trials()[1]) is True
    assert claim(a, a.get_trials()[1]) is False
    owner = a.get_trials()[0].system_attrs[OWNER]
    assert owner["pid"] == os.getpid() and owner["trial"] == 0
    # claiming never creates trials
    assert len(a.get_trials()) == 3


def test_outcomes_make_a_slot_done(two: tuple[optuna.Study, optuna.Study]) -> None:
    a, _ = two
    trials = a.get_trials()
    for trial in trials:
        assert claim(a, trial)
    finish(a, trials[0], TrialState.COMPLETE, value=0.5, attrs={STATUS: "completed"})
    finish(a, trials[1], TrialState.PRUNED, attrs={STATUS: "diverged"})
    finish(a, trials[2], TrialState.FAIL, attrs={STATUS: "failed", "nnlab_error": "boom"})
    views = slot_views(a.get_trials(), 3)
    assert all(v.done for v in views)
    assert reconcile(a, 3) == [] and len(a.get_trials()) == 3  # failed runs are outcomes: never retried


def test_a_dead_workers_trial_is_failed_and_requeued_with_its_slot(two: tuple[optuna.Study, optuna.Study]) -> None:
    a, b = two
    trial = a.get_trials()[1]
    assert claim(a, trial)
    a._storage.set_trial_param(trial._trial_id, "train.learning_rate", 0.01,
                               optuna.distributions.FloatDistribution(1e-4, 1.0, log=True))
    a._storage.set_trial_system_attr(trial._trial_id, OWNER, {"trial": trial.number, "host": os.uname().nodename,
                                                               "pid": _dead_pid(), "start": ""})
    assert reconcile(b, 3) == [1]
    states = [(t.state, t.user_attrs.get(SLOT)) for t in b.get_trials()]
    assert states[1] == (TrialState.FAIL, 1)
    copy = b.get_trials()[3]
    assert (copy.state, copy.user_attrs[SLOT], copy.params) == (TrialState.WAITING, 1, {"train.learning_rate": 0.01})
    assert reconcile(b, 3) == [] and len(b.get_trials()) == 4  # idempotent


def test_a_live_workers_trial_is_left_alone(two: tuple[optuna.Study, optuna.Study]) -> None:
    a, b = two
    assert claim(a, a.get_trials()[0])
    assert reconcile(b, 3) == []
    assert b.get_trials()[0].state == TrialState.RUNNING


def test_interrupted_trial_is_given_back(two: tuple[optuna.Study, optuna.Study]) -> None:
    a, _ = two
    trial = a.get_trials()[0]
    assert claim(a, trial)
    give_back(a, trial)
    views = slot_views(a.get_trials(), 3)
    assert not views[0].done and len(views[0].waiting) == 1 and len(views[0].lost) == 1


def test_a_second_copy_of_a_slot_stands_down(two: tuple[optuna.Study, optuna.Study]) -> None:
    a, b = two
    enqueue_slots(a, [0])  # a stray second copy of slot 0
    first, _, _, extra = a.get_trials()
    assert claim(a, first) and claim(b, b.get_trials()[3])
    assert duplicate_of(b, extra).number == first.number  # the lower-numbered claim runs it
    assert duplicate_of(a, first) is None
    finish(a, first, TrialState.COMPLETE, value=1.0, attrs={STATUS: "completed"})
    finish(b, extra, TrialState.FAIL, attrs={STATUS: "duplicate"})
    view = slot_views(a.get_trials(), 3)[0]
    assert view.done and not view.lost


def test_orphaned_slot_is_requeued(two: tuple[optuna.Study, optuna.Study]) -> None:
    a, _ = two
    trial = a.get_trials()[2]
    assert claim(a, trial)
    a._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # died between fail and re-queue
    reconcile(a, 3)
    assert slot_views(a.get_trials(), 3)[2].waiting


def test_best_trial_prefers_complete_then_pruned() -> None:
    def trial(number, state, value=None, steps=None):
        return optuna.trial.FrozenTrial(number=number, state=state, value=value, datetime_start=None,
                                        datetime_complete=None, params={}, distributions={}, user_attrs={},
                                        system_attrs={}, intermediate_values=steps or {}, trial_id=number)

    trials = [trial(0, TrialState.COMPLETE, 0.5), trial(1, TrialState.COMPLETE, 0.2),
              trial(2, TrialState.PRUNED, 0.1, {1: 0.1}), trial(3, TrialState.FAIL)]
    assert best_trial(trials, "minimize").number == 1
    assert best_trial(trials, "maximize").number == 0
    assert best_trial(trials[2:], "minimize").number == 2
    assert best_trial(trials[3:], "minimize") is None


def test_objective_uses_the_restored_epoch_after_early_stopping() -> None:
    spec = Spec.from_dict({"name": "o", "data": {"dataset": "moons"},
                           "train": {"epochs": 10, "early_stopping": 2}})
    history = {"val_loss": [0.9, 0.5, 0.6, 0.7], "val_accuracy": [0.5, 0.8, 0.75, 0.7]}
    metrics = {"val_loss": 0.7, "val_accuracy": 0.7, "test_accuracy": 0.79}
    assert objective_value(spec, "val_loss", metrics, history, epochs=4) == 0.5
    assert objective_value(spec, "val_accuracy", metrics, history, epochs=4) == 0.8
    assert objective_value(spec, "test_accuracy", metrics, history, epochs=4) == 0.79
    full = {"val_loss": [0.9, 0.5, 0.6, 0.7, 0.8, 0.6, 0.7, 0.9, 0.8, 0.7]}
    # ran every epoch: Keras restores the best epoch's weights all the same
    assert objective_value(spec, "val_loss", metrics, full, epochs=10) == 0.5
    kept = Spec.from_dict({"name": "o", "data": {"dataset": "moons"},
                           "train": {"epochs": 10, "early_stopping": 2, "restore_best": False}})
    assert objective_value(kept, "val_loss", metrics, history, epochs=4) == 0.7  # the last epoch's weights
