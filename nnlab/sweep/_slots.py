"""Slots: the exactly-once bookkeeping of a sweep, on Optuna trials.

Every run a sweep makes is a *slot* — tune slot ``i`` or confirm slot ``i`` of a cell — created
up front as a WAITING trial carrying the user attr ``nnlab_slot``. A worker claims a WAITING
trial atomically (``set_trial_state_values(RUNNING)`` returns False to all but one claimant),
runs it, and tells Optuna the outcome. A slot is *done* when one of its trials has an outcome:
COMPLETE, PRUNED (pruned or diverged), or FAIL recorded as ``failed`` (an exception in the run —
never retried). A trial whose worker died (or was interrupted) is FAIL without an outcome; a
WAITING copy with the same slot and parameters is queued in its place, so the slot runs again.

Dead workers are found by heartbeat (RDB storages, via Optuna) and, on this host, by process id
(``nnlab_owner`` system attr), which also covers the journal storage, which has no heartbeats.
Should two copies of one slot ever be queued, the one claimed second sees the other and stands
down (``duplicate``) instead of running it twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import socket
import warnings
from dataclasses import dataclass, field
from typing import Any

from nnlab.sweep._storage import retry_callback

SLOT = "nnlab_slot"
STATUS = "nnlab_status"  # on finished trials: completed, pruned, diverged, failed, interrupted, duplicate
ERROR = "nnlab_error"
RUN_ID = "nnlab_run_id"
OWNER = "nnlab_owner"  # system attr {"trial", "host", "pid", "start"}
CLAIM_GRACE_S = 120.0  # a RUNNING trial with no owner record this long after its start was abandoned


# ------------------------------------------------------------------------------------------------
# a study's storage and a trial's id in it


def storage_of(study: Any) -> Any:
    """The storage a study lives in. Optuna offers no public accessor: this is the one place the sweep
    reads it (``tests/reliability/test_private_apis.py`` holds it to that); slots taken with
    ``study.ask()`` and ended with ``study.tell()`` would need none."""
    return study._storage


@functools.lru_cache(maxsize=65536)
def _trial_id(storage: Any, study_id: int, number: int) -> int:
    return int(storage.get_trial_id_from_study_id_trial_number(study_id, number))


def trial_id(study: Any, trial: Any) -> int:
    """A trial's id in its storage, through the storage's public lookups. The id of a study's trial number
    never changes, so it is looked up once per process; the study's id is looked up each time (a study
    deleted and made again under its name, ``--restart``, has a new one)."""
    storage = storage_of(study)
    return _trial_id(storage, int(storage.get_study_id_from_name(study.study_name)), trial.number)

def _states() -> Any:
    from optuna.trial import TrialState

    return TrialState


def slot_of(trial: Any) -> int | None:
    value = trial.user_attrs.get(SLOT)
    return int(value) if isinstance(value, int) else None


def is_outcome(trial: Any) -> bool:
    """A recorded result: the slot is done and is never run again."""
    ts = _states()
    if trial.state in (ts.COMPLETE, ts.PRUNED):
        return True
    return trial.state == ts.FAIL and trial.user_attrs.get(STATUS) == "failed"


def outcome_status(trial: Any) -> str:
    ts = _states()
    if trial.state == ts.COMPLETE:
        return "completed"
    status = trial.user_attrs.get(STATUS)
    if trial.state == ts.PRUNED:
        return "diverged" if status == "diverged" else "pruned"
    return str(status or "failed")


@dataclass
class SlotView:
    index: int
    outcome: Any = None  # the trial holding the slot's result
    waiting: list[Any] = field(default_factory=list)
    running: list[Any] = field(default_factory=list)
    lost: list[Any] = field(default_factory=list)  # failed without an outcome: dead or interrupted

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def active(self) -> bool:
        return bool(self.waiting or self.running)


def slot_views(trials: list[Any], n_slots: int) -> list[SlotView]:
    ts = _states()
    views = [SlotView(i) for i in range(n_slots)]
    for trial in sorted(trials, key=lambda t: t.number):
        slot = slot_of(trial)
        if slot is None or not 0 <= slot < n_slots:
            continue
        view = views[slot]
        if is_outcome(trial):
            if view.outcome is None:
                view.outcome = trial
        elif trial.state == ts.WAITING:
            view.waiting.append(trial)
        elif trial.state == ts.RUNNING:
            view.running.append(trial)
        elif trial.user_attrs.get(STATUS) != "duplicate":
            view.lost.append(trial)
    return views


# ------------------------------------------------------------------------------------------------
# creating and claiming


def enqueue_slots(study: Any, indices: list[int] | range) -> None:
    for i in indices:
        study.enqueue_trial({}, user_attrs={SLOT: i}, skip_if_exists=False)


def claim(study: Any, trial: Any) -> bool:
    """Atomically move a WAITING trial to RUNNING; False when another worker got it first."""
    import optuna

    ts = _states()
    storage = storage_of(study)
    try:
        tid = trial_id(study, trial)
        won = bool(storage.set_trial_state_values(tid, state=ts.RUNNING))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    except Exception as exc:  # noqa: BLE001 - a lost race on SQLite surfaces as a database error
        if "locked" in str(exc).lower() or "busy" in str(exc).lower():
            return False
        raise
    if won:
        owner = {"trial": trial.number, "host": socket.gethostname(), "pid": os.getpid(), "start": _proc_start()}
        storage.set_trial_system_attr(tid, OWNER, owner)
    return won


def duplicate_of(study: Any, trial: Any) -> Any:
    """After a claim: another trial of the same slot that has the result or runs it already."""
    ts = _states()
    mine = slot_of(trial)
    for other in study.get_trials(deepcopy=False):
        if other.number == trial.number or slot_of(other) != mine:
            continue
        if is_outcome(other) or (other.state == ts.RUNNING and other.number < trial.number):
            return other
    return None


def finish(study: Any, trial: Any, state: Any, *, value: float | None = None, attrs: dict[str, Any]) -> None:
    """Record a claimed trial's end: attrs first, then the state, which makes it final.

    A trial failed meanwhile by a reaper (it took us for dead) is left alone: its re-queued copy
    finds this run's result in MLflow and adopts it.
    """
    import optuna

    storage, tid = storage_of(study), trial_id(study, trial)
    ts = _states()
    try:
        if storage.get_trial(tid).state.is_finished():
            return
        for key, val in attrs.items():
            storage.set_trial_user_attr(tid, key, val)
        if state == ts.COMPLETE:
            study.tell(trial.number, value, state=ts.COMPLETE, skip_if_finished=True)
        else:
            study.tell(trial.number, state=state, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        return


def give_back(study: Any, trial: Any, status: str = "interrupted") -> None:
    """An unfinished run (Ctrl-C, SIGTERM): fail the trial without an outcome and queue a copy."""
    import optuna

    storage, tid = storage_of(study), trial_id(study, trial)
    try:
        storage.set_trial_user_attr(tid, STATUS, status)
        if storage.set_trial_state_values(tid, state=_states().FAIL):
            retry_callback()(study, storage.get_trial(tid))
    except optuna.exceptions.UpdateFinishedTrialError:
        pass


# ------------------------------------------------------------------------------------------------
# repairing after crashes


def _proc_start() -> str:
    from nnlab.tracking._process import proc_start_time

    return proc_start_time(os.getpid())


def _owner_dead(trial: Any, host: str, now: dt.datetime) -> bool:
    from nnlab.tracking._process import process_alive

    owner = trial.system_attrs.get(OWNER)
    if isinstance(owner, dict) and owner.get("trial") == trial.number:
        if owner.get("host") != host:
            return False  # another machine: its heartbeat decides
        return not process_alive(int(owner.get("pid", 0)), str(owner.get("start", "")))
    started = trial.datetime_start
    return started is not None and (now - started).total_seconds() > CLAIM_GRACE_S


def reconcile(study: Any, n_slots: int) -> list[int]:
    """Fail the RUNNING trials of dead workers, re-queue them, and re-queue orphaned slots.

    Returns the numbers of the trials it failed.
    """
    import optuna

    ts = _states()
    storage = storage_of(study)
    failed: list[int] = []
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is not None:
        before = {t.number for t in study.get_trials(deepcopy=False, states=(ts.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(ts.RUNNING,))}
        failed.extend(sorted(before - after))
    host, now = socket.gethostname(), dt.datetime.now()
    for trial in study.get_trials(deepcopy=True, states=(ts.RUNNING,)):
        if not _owner_dead(trial, host, now):
            continue
        try:
            tid = trial_id(study, trial)
            if storage.set_trial_state_values(tid, state=ts.FAIL):
                failed.append(trial.number)
                retry_callback()(study, storage.get_trial(tid))
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    for view in slot_views(study.get_trials(deepcopy=True), n_slots):
        if view.done or view.active:
            continue
        if view.lost:
            retry_callback()(study, view.lost[-1])
        else:
            enqueue_slots(study, [view.index])
    return failed
