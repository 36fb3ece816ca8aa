"""Slots: the exactly-once bookkeeping of a sweep, on Optuna trials, through Optuna's public API.

Every run a sweep makes is a *slot* — tune slot ``i`` or confirm slot ``i`` of a cell — queued up
front with ``study.enqueue_trial`` and the user attr ``nnlab_slot``. A worker takes one with
``study.ask()`` (which pops a WAITING trial atomically), runs it, and ends it with ``study.tell()``.
A slot is *done* when one of its trials has an outcome: COMPLETE, PRUNED (pruned or diverged), or
FAIL recorded as ``failed`` (an exception in the run — never retried). A trial whose worker died or
was interrupted is FAIL without an outcome, and a WAITING copy of its slot, with the same
parameters, is queued in its place.

Which workers died is known one way per storage: on a database storage by Optuna's heartbeat
(``optuna.storages.fail_stale_trials``); on a journal file, which has none, by the worker's process
(the user attr ``nnlab_worker``: host, pid and start time), which the coordinator that owns the
workers, or the next one on this host, checks. Should two copies of one slot ever be queued, the
one taken second stands down (``duplicate``) instead of running it twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SLOT = "nnlab_slot"
STATUS = "nnlab_status"  # on finished trials: completed, pruned, diverged, failed, interrupted, duplicate, lost
ERROR = "nnlab_error"
RUN_ID = "nnlab_run_id"
WORKER = "nnlab_worker"  # "host pid start" of the process running the trial
UNCLAIMED_S = 120.0  # a RUNNING trial without a worker record this long after its start was abandoned


def _states() -> Any:
    from optuna.trial import TrialState

    return TrialState


def slot_of(trial: Any) -> int | None:
    value = trial.user_attrs.get(SLOT)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


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
            view.outcome = view.outcome or trial
        elif trial.state == ts.WAITING:
            view.waiting.append(trial)
        elif trial.state == ts.RUNNING:
            view.running.append(trial)
        elif trial.user_attrs.get(STATUS) != "duplicate":
            view.lost.append(trial)
    return views


def enqueue_slots(study: Any, indices: list[int] | range, params: dict[str, Any] | None = None) -> None:
    """Queue slots; ``params`` (a lost trial's) make the copy run with the values it ran with."""
    for i in indices:
        study.enqueue_trial(dict(params or {}), user_attrs={SLOT: i}, skip_if_exists=False)


@contextlib.contextmanager
def _claim_lock(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def take_slot(study: Any, lock: str | None, *, before_ask: Callable[[int], None] | None = None,
              taken: Callable[[Any], None] | None = None) -> Any:
    """``study.ask()`` when a slot is queued: the trial it pops, recorded as this process's; None when no
    slot is queued. Workers of a journal file take turns (``lock``, a file beside it), so ``ask`` never
    meets an empty queue and makes a trial of its own; one so made by a race between machines on a
    database is ended at once as ``spare``. ``before_ask`` gets the number ``ask`` will most likely pop
    (to seed the sampler), ``taken`` the trial before it is recorded (to start its heartbeat)."""
    import optuna

    ts = _states()
    with _claim_lock(lock):
        waiting = [t for t in study.get_trials(deepcopy=False, states=(ts.WAITING,)) if slot_of(t) is not None]
        if not waiting:
            return None
        if before_ask is not None:
            before_ask(waiting[0].number)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "heartbeat is meant for optimize()": the worker records its own
            trial = study.ask()
    if slot_of(trial) is None:
        trial.set_user_attr(STATUS, "spare")
        study.tell(trial, state=ts.FAIL)
        return None
    if taken is not None:
        taken(trial)
    try:
        trial.set_user_attr(WORKER, worker_identity())
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    return trial


def duplicate_of(study: Any, trial: Any) -> Any:
    """After taking a slot: another trial of it that has the result or runs it already."""
    ts = _states()
    mine = slot_of(trial)
    for other in study.get_trials(deepcopy=False):
        if other.number == trial.number or slot_of(other) != mine:
            continue
        if is_outcome(other) or (other.state == ts.RUNNING and other.number < trial.number):
            return other
    return None


# ------------------------------------------------------------------------------------------------
# who runs a trial, and whether it still lives


def worker_identity() -> str:
    from nnlab.tracking._process import proc_start_time

    return f"{socket.gethostname()} {os.getpid()} {proc_start_time(os.getpid())}"


def _abandoned(trial: Any, host: str, now: dt.datetime, *, by_process: bool) -> bool:
    """A RUNNING trial nobody runs: taken but never recorded as a worker's (it died right after
    ``ask``), or, ``by_process``, one whose worker process on this host is gone."""
    from nnlab.tracking._process import process_alive

    owner = str(trial.user_attrs.get(WORKER) or "").split(" ")
    if len(owner) < 2 or not owner[1].isdigit():
        started = trial.datetime_start
        return started is not None and (now - started).total_seconds() > UNCLAIMED_S
    return by_process and owner[0] == host and not process_alive(int(owner[1]), " ".join(owner[2:]))


def reconcile(study: Any, n_slots: int, *, heartbeat: bool) -> list[Any]:
    """Fail the RUNNING trials of dead workers and queue a copy of every slot that has neither an
    outcome nor a live trial. Returns the trials it failed (as they were while running)."""
    import optuna

    ts = _states()
    running = {t.number: t for t in study.get_trials(deepcopy=False, states=(ts.RUNNING,))}
    if heartbeat:  # another machine's workers too: silent past the grace period
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    now_failed = {t.number for t in study.get_trials(deepcopy=False, states=(ts.FAIL,)) if not is_outcome(t)}
    failed = [number for number in running if number in now_failed]
    host, now = socket.gethostname(), dt.datetime.now()
    for number, trial in sorted(running.items()):
        if number not in failed and _abandoned(trial, host, now, by_process=not heartbeat):
            study.tell(number, state=ts.FAIL, skip_if_finished=True)
            failed.append(number)
    for view in slot_views(study.get_trials(deepcopy=False), n_slots):
        if not (view.done or view.active):
            enqueue_slots(study, [view.index], view.lost[-1].params if view.lost else None)
    return [running[number] for number in failed]
