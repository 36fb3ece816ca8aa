"""Exactly-once bookkeeping on Optuna trials through ask and tell, with two storage handles on one
journal file standing in for two processes (and four real processes racing). No training."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.trial import TrialState

import nnlab.sweep._slots as slots
from nnlab.spec import Spec
from nnlab.sweep._ledger import best_trial
from nnlab.sweep._slots import (
    SLOT,
    STATUS,
    WORKER,
    duplicate_of,
    enqueue_slots,
    reconcile,
    slot_views,
    take_slot,
)
from nnlab.sweep._worker import objective_value

optuna.logging.set_verbosity(optuna.logging.WARNING)
LR = optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)


def _storage(path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


@pytest.fixture
def two(tmp_path: Path) -> tuple[optuna.Study, optuna.Study]:
    path = tmp_path / "optuna.journal"
    a = optuna.create_study(study_name="s/cell/tune", storage=_storage(path))
    enqueue_slots(a, range(3))
    b = optuna.load_study(study_name="s/cell/tune", storage=_storage(path))
    return a, b


@pytest.fixture
def lock(tmp_path: Path) -> str:
    return str(tmp_path / "optuna.journal.claims")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _states(study: optuna.Study) -> list[tuple[TrialState, int | None]]:
    return [(t.state, t.user_attrs.get(SLOT)) for t in study.get_trials()]


def test_queued_slots_are_taken_once_in_order_and_taking_never_creates_trials(
        two: tuple[optuna.Study, optuna.Study], lock: str) -> None:
    a, b = two
    assert [t.user_attrs[SLOT] for t in a.get_trials(states=(TrialState.WAITING,))] == [0, 1, 2]
    taken = [take_slot(a, lock), take_slot(b, lock), take_slot(a, lock)]
    assert [slot_of_trial.user_attrs[SLOT] for slot_of_trial in taken] == [0, 1, 2]
    assert len({t.number for t in taken}) == 3
    owner = b.get_trials()[0].user_attrs[WORKER].split(" ")
    assert owner[1] == str(os.getpid())
    assert take_slot(b, lock) is None and take_slot(a, None) is None  # an empty queue: nothing is asked
    assert len(a.get_trials()) == 3 and {t.state for t in a.get_trials()} == {TrialState.RUNNING}


def test_processes_racing_for_slots_take_each_exactly_once(tmp_path: Path, lock: str) -> None:
    """Four processes empty a queue of 40 slots on one journal: every slot once, no trial made by ``ask``."""
    path = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name="race", storage=_storage(path))
    enqueue_slots(study, range(40))
    code = (f"import optuna, sys\nfrom optuna.storages.journal import *\nfrom nnlab.sweep._slots import take_slot\n"
            f"p = {str(path)!r}\ns = optuna.load_study(study_name='race', storage=JournalStorage("
            f"JournalFileBackend(p, lock_obj=JournalFileOpenLock(p))))\n"
            f"while (t := take_slot(s, {lock!r})) is not None:\n    s.tell(t, 1.0)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    trials = study.get_trials()
    assert len(trials) == 40 and {t.state for t in trials} == {TrialState.COMPLETE}
    assert sorted(t.user_attrs[SLOT] for t in trials) == list(range(40))


def test_outcomes_make_a_slot_done(two: tuple[optuna.Study, optuna.Study], lock: str) -> None:
    a, _ = two
    first, second, third = (take_slot(a, lock) for _ in range(3))
    a.tell(first, 0.5)
    second.set_user_attr(STATUS, "diverged")
    a.tell(second, state=TrialState.PRUNED)
    third.set_user_attr(STATUS, "failed")
    a.tell(third, state=TrialState.FAIL)
    views = slot_views(a.get_trials(), 3)
    assert all(v.done for v in views)
    assert reconcile(a, 3, heartbeat=False) == [] and len(a.get_trials()) == 3  # failed runs are never retried


def test_a_dead_workers_trial_is_failed_and_requeued_with_its_slot_and_values(
        two: tuple[optuna.Study, optuna.Study], lock: str) -> None:
    a, b = two
    take_slot(a, lock)
    trial = take_slot(a, lock)
    assert trial.suggest_float("train.learning_rate", 1e-4, 1.0, log=True) > 0
    value = trial.params["train.learning_rate"]
    trial.set_user_attr(WORKER, f"{os.uname().nodename} {_dead_pid()} ")
    assert [t.number for t in reconcile(b, 3, heartbeat=False)] == [1]
    assert _states(b)[1] == (TrialState.FAIL, 1)
    copy = b.get_trials()[3]
    assert (copy.state, copy.user_attrs[SLOT]) == (TrialState.WAITING, 1)
    assert reconcile(b, 3, heartbeat=False) == [] and len(b.get_trials()) == 4  # idempotent
    again = take_slot(b, lock)  # slot 2 was queued before the copy
    rerun = take_slot(b, lock)
    assert (again.user_attrs[SLOT], rerun.user_attrs[SLOT]) == (2, 1)
    assert rerun.suggest_float("train.learning_rate", 1e-4, 1.0, log=True) == value  # the values it ran with


def test_a_live_workers_trial_and_another_hosts_are_left_alone(two: tuple[optuna.Study, optuna.Study],
                                                             lock: str) -> None:
    a, b = two
    take_slot(a, lock)
    other = take_slot(a, lock)
    other.set_user_attr(WORKER, f"elsewhere {_dead_pid()} ")  # its own coordinator judges it
    assert reconcile(b, 3, heartbeat=False) == []
    assert [s for s, _ in _states(b)[:2]] == [TrialState.RUNNING, TrialState.RUNNING]


def test_a_trial_taken_but_never_recorded_is_abandoned_after_a_while(
        two: tuple[optuna.Study, optuna.Study], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.ask()  # popped, then its process died before it said whose it is
    assert reconcile(b, 3, heartbeat=False) == []
    monkeypatch.setattr(slots, "UNCLAIMED_S", 0.0)
    assert [t.number for t in reconcile(b, 3, heartbeat=True)] == [0]  # on any storage
    assert slot_views(b.get_trials(), 3)[0].waiting


def test_a_second_copy_of_a_slot_stands_down(two: tuple[optuna.Study, optuna.Study], lock: str) -> None:
    a, b = two
    enqueue_slots(a, [0])  # a stray second copy of slot 0
    first = take_slot(a, lock)
    take_slot(a, lock)
    take_slot(a, lock)
    extra = take_slot(b, lock)
    assert (first.user_attrs[SLOT], extra.user_attrs[SLOT]) == (0, 0)
    assert duplicate_of(b, extra).number == first.number  # the lower-numbered claim runs it
    assert duplicate_of(a, first) is None
    a.tell(first, 1.0)
    extra.set_user_attr(STATUS, "duplicate")
    b.tell(extra, state=TrialState.FAIL)
    view = slot_views(a.get_trials(), 3)[0]
    assert view.done and not view.lost


def test_orphaned_slot_is_requeued(two: tuple[optuna.Study, optuna.Study], lock: str) -> None:
    a, _ = two
    trial = take_slot(a, lock)
    a.tell(trial, state=TrialState.FAIL)  # died between failing it and queueing the copy
    reconcile(a, 3, heartbeat=False)
    assert slot_views(a.get_trials(), 3)[0].waiting


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
