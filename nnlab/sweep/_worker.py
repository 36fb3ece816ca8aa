"""A sweep worker: a process that takes slots with ``study.ask()``, runs them, and ends them with
``study.tell()``.

The coordinator starts workers with ``multiprocessing`` (``serve`` is the process's function) and
talks to each over a pipe: optionally a preflight request (check that the first cell's data and model
load; answered on the pipe), then its ``WorkerJob``, or None when it is not needed.

A worker returns 0 when no work is left or after ``max_runs`` runs (the coordinator then starts a
fresh one, so memory stays flat), 130 when interrupted (SIGINT/SIGTERM: at the next epoch boundary
the run is ended KILLED in MLflow and its slot queued again), 3 when it cannot start, 4 when a store
failed under it (a full disk, the Optuna database unreachable past its retries), 5 when the
accelerator failed under a run (out of device memory, a CUDA error): in the last two cases the run
is ended KILLED and its slot queued again where the stores still allow it, each with one line on
stderr.
``run_worker`` is the same loop, callable in-process.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from nnlab.errors import (
    DeviceFault,
    NnlabError,
    SpecError,
    StoreFailed,
    TrialFailed,
    device_fault,
    no_space,
    no_space_message,
)
from nnlab.sweep._slots import (
    ERROR,
    RUN_ID,
    SLOT,
    STATUS,
    duplicate_of,
    enqueue_slots,
    slot_of,
    slot_views,
    take_slot,
)

EXIT_DONE, EXIT_CRASH, EXIT_SETUP, EXIT_STORE_FAILED, EXIT_DEVICE_FAULT, EXIT_INTERRUPTED = 0, 1, 3, 4, 5, 130
IDLE_POLL_S = 0.5  # waiting for slots that others run: a local journal is cheap to read
IDLE_POLL_REMOTE_S = 2.0  # ... a database shared by machines less so
TAG = "nnlab."
RATE = "train.learning_rate"  # the one tuned value a cohort's members may differ in


@dataclass
class WorkerJob:
    """Everything a worker needs; it re-reads the spec itself and checks the sweep hash."""

    spec: str
    overrides: list[str]
    profile: str | None
    storage: str | None  # --storage, None = the embedded journal
    tracking_uri: str
    store_root: str
    sweep_hash: str
    parent_run_id: str
    max_runs: int = 20
    worker: int = 0
    workers: int = 1  # the sweep's workers on this machine: a worker takes no more than its share of a cell's trials
    log: str | None = None  # where the worker sends its output once it has the job


@dataclass
class Stop:
    """A stop request (SIGINT, SIGTERM), acted on only at safe points: before and after loading the
    data, and between epochs (through the epoch hook). An exception raised asynchronously inside
    TensorFlow can surface as an unrelated error and would be recorded as a failed run; raised from
    the epoch hook it unwinds cleanly, and execute ends the run KILLED."""

    requested: bool = False

    def handler(self, signum: int, frame: Any) -> None:
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


@dataclass
class Claimed:
    cell: Any
    phase: str  # tune or confirm
    study: Any
    trial: Any  # the optuna.trial.Trial that study.ask() returned
    heartbeat: Any = None  # its _Heartbeat on a database storage

    def release(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop.set()
            self.heartbeat = None

    @property
    def slot(self) -> int:
        return int(slot_of(self.trial) or 0)

    @property
    def key(self) -> str:
        return f"{self.cell.id}/{self.phase}/{self.slot}"


@dataclass
class Outcome:
    status: str  # completed, pruned, diverged, failed, duplicate, requeued
    value: float | None = None
    run_id: str | None = None
    error: str | None = None
    seconds: float = 0.0
    adopted: bool = False


# ------------------------------------------------------------------------------------------------
# the objective


def objective_value(spec: Any, objective: str, metrics: dict[str, float], history: dict[str, list[float]],
                    epochs: int) -> float | None:
    """The kept model's value of the objective: the best epoch's when early stopping restored weights (Keras 3
    restores them at the end of training whether it stopped early or ran every epoch), else the last one's.

    ``execute``'s final metrics already describe the kept model; the history gives the same value (the
    same epoch, by ``kept_epoch``) and also for a run adopted from MLflow that was logged before they did,
    whose final val_* were its last epoch's. Only the epochs count: steps from ``epochs`` on are final values.
    """
    from nnlab.train import kept_epoch

    kept = kept_epoch(spec, history.get("val_loss", [])[:epochs]) if epochs > 0 else None
    series = history.get(objective)
    if kept is not None and series and kept < min(len(series), epochs) and not objective.startswith("test_"):
        return float(series[kept])
    value = metrics.get(objective)
    return float(value) if value is not None else None


def epoch_metric(objective: str) -> str:
    """The per-epoch metric to report for pruning (test metrics exist only at the end)."""
    return "val_" + objective[len("test_"):] if objective.startswith("test_") else objective


# ------------------------------------------------------------------------------------------------
# running slots


class _Heartbeat:
    """While a slot runs on a database storage: Optuna's heartbeat for its trial (``record_heartbeat``),
    which ``fail_stale_trials`` reads. Journal storages have none."""

    def __init__(self, storage: Any, study: Any, trial: Any) -> None:
        self.interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
        self.stop = threading.Event()
        if self.interval:
            study_id = storage.get_study_id_from_name(study.study_name)
            self.trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            self.storage = storage
            storage.record_heartbeat(self.trial_id)
            threading.Thread(target=self._beat, daemon=True).start()

    def _beat(self) -> None:
        while not self.stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a missed beat is covered by the grace period
                self.storage.record_heartbeat(self.trial_id)


class SlotRunner:
    def __init__(self, plan: Any, ledger: Any, tracker: Any, parent_run_id: str, stop: Stop, workers: int = 1) -> None:
        self.plan = plan
        self.workers = max(1, workers)
        self.ledger = ledger
        self.storage = ledger.storage
        self.tracker = tracker
        self.parent = parent_run_id
        self.stop = stop
        self.experiment_id = tracker.experiment_id(plan.spec.name)
        self.store_failed: StoreFailed | None = None  # set by the epoch hook: the run ends KILLED, then this
        self.heartbeat: _Heartbeat | None = None
        from nnlab.train._reuse import ModelCache

        self.cache = ModelCache() if plan.spec.sweep.reuse else None  # a cell's compiled model, kept
        target = ledger.storage.target
        self.claims = target.location + ".claims" if target.kind == "journal" else None
        self._capacities: dict[str, int] = {}

    # -- taking a slot -----------------------------------------------------------------------------
    def claim_next(self) -> Claimed | None:
        """The first queued slot in cell order: tune slots, then (once a cell's tuning is over) confirm."""
        for cell in self.plan.cells:
            tune, confirm = self.ledger.tune(cell), self.ledger.confirm(cell)
            tuned_out = True
            if tune is not None:
                trial = self.storage.retry(self._take, cell, tune)
                if trial is not None:
                    return self._drawn(Claimed(cell, "tune", tune, trial, self._beating()))
                views = slot_views(tune.get_trials(deepcopy=False), self.plan.trials)
                tuned_out = all(v.done for v in views) and any(v.outcome.state.name != "FAIL" for v in views)
            if confirm is not None and tuned_out:
                trial = self.storage.retry(self._take, cell, confirm)
                if trial is not None:
                    return Claimed(cell, "confirm", confirm, trial, self._beating())
        return None

    def _beating(self) -> Any:
        beat, self.heartbeat = self.heartbeat, None
        return beat

    def claim_cohort(self, first: Claimed, room: int) -> list[Claimed]:
        """``first`` and, when its cell's runs can train as a cohort (``sweep.cohort``), up to ``room`` - 1
        more queued slots of the same cell and phase: confirm repeats, or tune trials while the sampler
        draws them without results (``tune_batch``), so that each gets the values it would get taken alone,
        and no more than this worker's share of the cell's unfinished trials, so that the other workers are
        not left idle beside a cohort."""
        from optuna.trial import TrialState

        jobs = [first]
        tune = first.phase == "tune"
        size = min(self.capacity(first.cell), room, self.tune_batch() if tune else room)
        if tune and size > 1:  # this worker's share of the cell's unfinished trials
            states = self.storage.retry(_states, first.study)
            size = min(size, math.ceil((states[TrialState.WAITING] + states[TrialState.RUNNING]) / self.workers))
        while len(jobs) < size:
            if tune:  # trials taken by any worker: the sampler draws blind for the first tune_batch
                states = self.storage.retry(_states, first.study)
                if states.total() - states[TrialState.WAITING] >= self.tune_batch():
                    break
            trial = self.storage.retry(self._take, first.cell, first.study)
            if trial is None:
                break
            job = Claimed(first.cell, first.phase, first.study, trial, self._beating())
            jobs.append(self._drawn(job) if tune else job)
        return jobs

    def tune_batch(self) -> int:
        """Tune trials a worker may take at once: those the sampler draws before any result (``unguided``),
        when the learning rate is all the sweep tunes; else 1 (anything else may change the graph, and
        trials that cannot share one would only wait for one another in one worker)."""
        from nnlab.sweep._samplers import unguided

        if not self.plan.tuned or any(d.key != RATE for d in self.plan.dims):
            return 1
        return unguided(self.plan.spec.sweep.sampler, self.plan.trials)

    def capacity(self, cell: Any) -> int:
        """Members the cell's cohort engine holds (``sweep.cohort``; ``auto``: by the device and the stacked
        data, for the larger of its confirm repeats and the tune trials it may take at once), or 0 when its runs
        train one model each (``cohort: 1``, or a ``blocker``). Every run of the cell, one or several at a
        time, then trains through that engine, traced once per worker."""
        from nnlab.train._cohort import blocker, cohort_size, member_bytes

        if cell.id in self._capacities:
            return self._capacities[cell.id]
        plan, setting = self.plan, self.plan.spec.sweep.cohort
        spec = plan.cell_specs[cell.id]
        size = 0
        if setting != 1 and blocker(spec) is None:
            slots = max(plan.seeds, self.tune_batch())
            try:
                stacked = member_bytes(spec) if setting == "auto" else 0
                size = cohort_size(setting, slots, gpu=_gpu(), member_bytes=stacked)
            except Exception:  # noqa: BLE001 - the slot's run meets it and records it
                size = 0
        self._capacities[cell.id] = size
        return size

    def _drawn(self, job: Claimed) -> Claimed:
        """A tune trial's values drawn as soon as it is taken, while its sampler is the study's: a worker
        that takes several draws each as it would draw it alone. A failure here is met again, and
        recorded, when the run is configured."""
        with contextlib.suppress(Exception):
            self.storage.retry(self._suggest, job)
        return job

    def _take(self, cell: Any, study: Any) -> Any:
        tune = study.study_name.endswith("/tune")
        seeded: list[int] = []

        def before_ask(number: int) -> None:
            if tune:
                self._sampler(cell, study, number)
                seeded.append(number)

        def taken(trial: Any) -> None:
            if tune and trial.number not in seeded:  # another machine took the slot expected
                self._sampler(cell, study, trial.number)
            self.heartbeat = _Heartbeat(self.storage.storage, study, trial)

        trial = take_slot(study, self.claims, before_ask=before_ask, taken=taken)
        if trial is None and self.heartbeat is not None:  # taken, then found failed by a coordinator
            self.heartbeat.stop.set()
            self.heartbeat = None
        return trial

    def _sampler(self, cell: Any, study: Any, number: int) -> None:
        from nnlab.sweep._pruners import build_pruner
        from nnlab.sweep._samplers import build_sampler

        plan = self.plan
        study.sampler = build_sampler(plan.spec.sweep.sampler, plan.dims, plan.trials,
                                      cell_seed=plan.cell_seed(cell), trial_number=number)
        study.pruner = build_pruner(plan.spec.sweep.pruner, plan.trials, plan.cell_specs[cell.id].train.epochs)

    # -- running -----------------------------------------------------------------------------------
    def run(self, job: Claimed) -> Outcome:
        return self.run_cohort([job])[0]

    def run_cohort(self, jobs: list[Claimed]) -> list[Outcome]:
        """Run slots (one, or several of one cell and phase) and tell their outcomes. A slot whose trial is
        a duplicate, or whose run MLflow already has, is told at once. When the cell's runs train through
        its cohort engine (``capacity``), those with a run to train, one or more, form a cohort
        (``form_cohort``): each member's MLflow run starts, the cohort trains (a tune member is reported
        to its pruner every epoch), and each is recorded as its own run and trial; a member the cohort
        leaves out (its loss diverged) trains alone in the run started for it, and so does every slot
        when no cohort forms. A stop, a machine
        fault or a crash ends the runs not finished KILLED and gives back every slot not yet told."""
        from nnlab.train._cohort import finish, start_member

        outcomes: dict[int, Outcome] = {}
        runs: dict[int, str] = {}  # started member runs not ended yet, by position
        try:
            ready = []
            for pos, job in enumerate(jobs):
                if self.storage.retry(duplicate_of, job.study, job.trial) is not None:
                    outcomes[pos] = self._record(job, Outcome("duplicate"))
                    continue
                existing = self._find_run(job.key)
                if existing is not None:
                    outcomes[pos] = self._record(job, self._adopt(job, existing))
                    continue
                try:
                    overrides, tags = self._configure(job)
                except SpecError as exc:
                    outcomes[pos] = self._record(job, self._failed_run(job, {}, {}, _one_line(exc)))
                    continue
                try:
                    spec = self.plan.spec.with_values(overrides)
                except SpecError as exc:
                    outcomes[pos] = self._record(job, self._failed_run(job, overrides, tags, _one_line(exc)))
                    continue
                ready.append((pos, job, overrides, spec, tags))
            started = time.monotonic()
            cohort = self._form([r[3] for r in ready], ready[0][1]) if ready and self.capacity(jobs[0].cell) else None
            results: list[Any] = [None] * len(ready)
            if cohort is not None:
                for index, (pos, job, _, _, tags) in enumerate(ready):
                    runs[pos] = start_member(cohort, index, self.tracker, phase=job.phase, tags=tags,
                                             parent_run_id=self.parent, run_name=f"{job.cell.id} {job.phase} {job.slot}")
                results = self._train(cohort, [r[1] for r in ready])
            for index, (pos, job, overrides, spec, tags) in enumerate(ready):
                if results[index] is None:
                    outcomes[pos] = self._record(job, self._execute(job, overrides, tags, runs.pop(pos, None)))
                    continue
                assert cohort is not None  # a result comes from a cohort only
                try:
                    result = finish(cohort, index, results[index], self.tracker, runs[pos],
                                    figures=job.phase == "confirm")
                except Exception as exc:
                    fault = self._fault(exc, f"run {runs[pos]}", "its slot is queued again")
                    if fault is None:
                        raise
                    raise fault from None  # below: this run and the others not finished end KILLED
                del runs[pos]
                outcomes[pos] = self._record(job, self._outcome(spec, result, started))
        except BaseException as exc:
            error = str(exc).splitlines()[0][:500] if isinstance(exc, NnlabError) and str(exc) else "interrupted"
            for run_id in runs.values():
                _quietly(self.tracker.set_tags, run_id, {f"{TAG}status": "killed", f"{TAG}error": error})
                _quietly(self.tracker.end_run, run_id, "KILLED")
            status = "device_fault" if isinstance(exc, DeviceFault) else "interrupted"
            for pos, job in enumerate(jobs):
                if pos not in outcomes:
                    _quietly(self._give_back, job, status)
            what = f"{jobs[0].key} trial {jobs[0].trial.number}" if len(jobs) == 1 else f"{jobs[0].cell.id} {jobs[0].phase}"
            if isinstance(exc, KeyboardInterrupt) and self.store_failed is not None:  # the Optuna storage is gone
                print(f"{what}: stopped: {self.store_failed}", flush=True)
                raise self.store_failed from None
            if isinstance(exc, KeyboardInterrupt):
                print(f"{what}: interrupted; {len(jobs) - len(outcomes)} slot(s) queued again", flush=True)
            elif isinstance(exc, NnlabError) and len(jobs) > 1:
                print(f"{what}: stopped: {error}", flush=True)
            raise
        finally:
            for job in jobs:
                job.release()
        return [outcomes[pos] for pos in sorted(outcomes)]

    def _form(self, specs: list[Any], first: Claimed) -> Any:
        """``form_cohort``, or None (the runs train alone) when it fails for a reason of its own."""
        from nnlab.train._cohort import form_cohort

        self.stop.check()
        try:
            return form_cohort(specs, self.cache, self.capacity(first.cell))
        except Exception as exc:  # noqa: BLE001 - each run alone then meets (and records) it itself
            self._raise_machine_fault(exc, first)
            print(f"{first.cell.id} {first.phase}: no cohort ({_one_line(exc)}); its runs train one by one",
                  flush=True)
            return None

    def _train(self, cohort: Any, jobs: list[Claimed]) -> list[Any]:
        """Train the cohort with the worker's stop checks and status. If it fails for a reason of its own
        every member trains alone; a fault of the machine stops the worker, as under a run."""
        from nnlab.train import _callbacks as cb
        from nnlab.train._runner import WORKER_STATUS_ENV

        path = os.environ.get(WORKER_STATUS_ENV)
        slots = ",".join(str(job.slot) for job in jobs)
        cell, phase = jobs[0].cell.id, jobs[0].phase
        status = cb.WorkerStatus(path, {"run": f"{cell} {phase} {slots}", "phase": phase, "cell": cell,
                                        "slot": f"{cell}/{phase}/{slots}"}, cohort.specs[0].train.epochs) if path else None

        def between_epochs(epoch: int) -> None:
            self.stop.check()
            if status is not None:
                status.on_epoch_end(epoch)

        if status is not None:
            status.on_train_begin()
        hooks = [self._hook(job) if job.phase == "tune" else None for job in jobs]  # pruning
        try:
            return list(cohort.train(between_epochs, hooks))
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self._raise_machine_fault(exc, jobs[0])
            print(f"{cell} {phase}: the cohort of slots {slots} failed ({_one_line(exc)}); its runs "
                  "train one by one", flush=True)
            return [None] * len(jobs)
        finally:
            if self.cache is None:
                _clear_session()

    def _raise_machine_fault(self, exc: BaseException, job: Claimed) -> None:
        """A full disk or a failed accelerator under a cohort: the worker stops (the caller ends its runs
        KILLED and gives their slots back)."""
        error = self._fault(exc, f"the runs of cell {job.cell.id}", "their slots are queued again")
        if error is not None:
            raise error from None

    def _configure(self, job: Claimed) -> tuple[dict[str, Any], dict[str, str]]:
        """The values this slot sets (cell, tuned values, a confirm repeat's seed keys) and its MLflow tags."""
        plan = self.plan
        tags = {f"{TAG}cell": job.cell.id, f"{TAG}sweep_id": plan.sweep_id, f"{TAG}sweep_hash": plan.sweep_hash,
                f"{TAG}slot": job.key, f"{TAG}trial": str(job.trial.number), f"{TAG}study": job.study.study_name}
        if job.phase == "tune":
            return {**job.cell.values, **self.storage.retry(self._suggest, job)}, tags
        tuned = {}
        if plan.tuned:
            best = self.storage.retry(self.ledger.cell_progress, job.cell).best
            if best is None:
                raise SpecError(f"cell {job.cell.id} has no usable tune trial to confirm")
            tuned = {d.key: d.to_spec(best.params[d.key]) for d in plan.dims if d.key in best.params}
            self.storage.retry(job.trial.set_user_attr, "nnlab_tuned", tuned)
            tags[f"{TAG}source_trial"] = str(best.number)
        # a repeat sets every key of sweep.seed_keys (repeat k alike in every cell, so arms pair by repeat)
        repeat = plan.repeat_values(job.cell, job.slot)
        tags[f"{TAG}seed_index"] = str(job.slot)
        tags[f"{TAG}seed_keys"] = ",".join(repeat)
        return {**job.cell.values, **tuned, **repeat}, tags

    def _suggest(self, job: Claimed) -> dict[str, Any]:
        """The tuned values: the sampler's, or the values a re-queued copy carries from its lost trial."""
        return {d.key: d.suggest(job.trial) for d in self.plan.dims}

    def _execute(self, job: Claimed, overrides: dict[str, Any], tags: dict[str, str],
                 started_run: str | None = None) -> Outcome:
        """Run the slot alone; ``started_run``: its MLflow run, started already by a cohort it left."""
        from nnlab.train import execute, prepare

        plan = self.plan
        started = time.monotonic()
        try:
            spec = plan.spec.with_values(overrides)
        except SpecError as exc:
            return self._failed_run(job, overrides, tags, _one_line(exc))
        try:
            self.stop.check()
            try:
                prepared = prepare(spec, self.cache)
            except Exception as exc:  # noqa: BLE001 - bad combination of values: a failed trial
                if started_run is None:
                    return self._failed_run(job, overrides, tags, _one_line(exc), spec=spec)
                self.tracker.set_tags(started_run, {f"{TAG}status": "failed", f"{TAG}error": _one_line(exc)})
                self.tracker.end_run(started_run, "FAILED")
                return Outcome("failed", error=_one_line(exc), run_id=started_run)
            self.stop.check()
            result = execute(prepared, self.tracker, phase=job.phase, tags=tags, parent_run_id=self.parent,
                             run_name=f"{job.cell.id} {job.phase} {job.slot}", epoch_hook=self._hook(job),
                             progress=False, figures=job.phase == "confirm", started_run=started_run)
        except Exception as exc:
            self._machine_fault(job, exc)  # a full disk or the accelerator: not the run's failure
            if not isinstance(exc, TrialFailed):
                raise
            return Outcome("failed", error=str(exc), run_id=self._last_run_id(job.key),
                           seconds=time.monotonic() - started)
        finally:
            if self.cache is None:  # else the kept model's cell decides when Keras's state goes
                _clear_session()
        return self._outcome(spec, result, started)

    def _outcome(self, spec: Any, result: Any, started: float) -> Outcome:
        """A finished run's outcome: its objective value; a completed run without one failed."""
        objective = self.plan.objective
        value = objective_value(spec, objective, result.metrics, result.history, result.epochs)
        outcome = Outcome(result.status, value=value, run_id=result.run_id, seconds=time.monotonic() - started)
        if outcome.status == "completed" and (value is None or math.isnan(value)):
            outcome.status, outcome.error = "failed", f"objective {objective} is {value} in the run's metrics"
            if result.run_id:
                self.tracker.set_tags(result.run_id, {f"{TAG}status": "failed", f"{TAG}error": outcome.error})
        return outcome

    def _hook(self, job: Claimed) -> Any:
        """After each epoch: a stop request ends the run (KILLED); a tune run reports its objective
        to Optuna and is pruned when the pruner says so."""
        metric = epoch_metric(self.plan.objective)
        trial = job.trial if job.phase == "tune" else None
        stop, retry = self.stop, self.storage.retry

        def hook(epoch: int, metrics: dict[str, float]) -> bool:
            stop.check()
            value = metrics.get(metric)
            if trial is None or value is None or not math.isfinite(value):
                return False
            try:
                retry(trial.report, float(value), epoch + 1)
                return bool(retry(trial.should_prune))
            except StoreFailed as exc:
                self.store_failed = exc
                raise KeyboardInterrupt from None  # execute ends the run KILLED, run() stops the worker

        return hook

    def _give_back(self, job: Claimed, status: str = "interrupted") -> None:
        """An unfinished run (Ctrl-C, SIGTERM, a full disk): fail the trial without an outcome and queue
        its slot again, with the values it ran with."""
        from optuna.trial import TrialState

        with contextlib.suppress(Exception):
            job.trial.set_user_attr(STATUS, status)
        job.study.tell(job.trial, state=TrialState.FAIL, skip_if_finished=True)
        n_slots = self.plan.trials if job.phase == "tune" else self.plan.seeds
        view = slot_views(job.study.get_trials(deepcopy=False), n_slots)[job.slot]
        if not (view.done or view.active):
            enqueue_slots(job.study, [job.slot], job.trial.params)

    def _fault(self, exc: BaseException, what: str, queued: str) -> NnlabError | None:
        """A fault of the machine under ``what`` (not its failure) as the error that stops the worker: a
        full disk (perhaps the tracking store's: then where it is) or a failed accelerator (out of memory, a
        CUDA error; a fresh worker runs the slot again). None for any other exception."""
        if no_space(exc) is not None:
            store = self.tracker.store
            local = store.embedded or store.tracking_uri.startswith("sqlite")  # workers get the embedded store's URI
            where = f" in {store.root.resolve()}" if local else ""
            return StoreFailed(no_space_message(exc, f"writing {what}{where}"))
        fault = device_fault(exc)
        if fault is not None:
            line = str(fault).strip().splitlines()[0][:300] if str(fault).strip() else type(fault).__name__
            return DeviceFault(f"the accelerator failed under {what} ({type(fault).__name__}: {line}); {queued}")
        return None

    def _machine_fault(self, job: Claimed, exc: BaseException) -> None:
        """A fault of the machine under a run (``_fault``): end the run KILLED (never FAILED, which would
        be its result), put its slot back, and stop with one line. Each step is best effort: the fault
        may be the stores'. Any other exception: nothing."""
        if no_space(exc) is None and device_fault(exc) is None:
            return
        run_id = _quietly(self._last_run_id, job.key)
        error = self._fault(exc, f"run {run_id or job.key}", "its slot is queued again")
        assert error is not None
        message = str(error)
        if run_id:
            _quietly(self.tracker.set_tags, run_id, {f"{TAG}status": "killed", f"{TAG}error": message[:500]})
            _quietly(self.tracker.end_run, run_id, "KILLED")
        _quietly(self._give_back, job, "device_fault" if isinstance(error, DeviceFault) else "interrupted")
        print(f"{job.key} trial {job.trial.number}: stopped: {message}", flush=True)
        raise error from None

    # -- MLflow: failed records, adoption ---------------------------------------------------------
    def _failed_run(self, job: Claimed, overrides: dict[str, Any], tags: dict[str, str], error: str,
                    spec: Any = None) -> Outcome:
        """A run that could not start still leaves a FAILED run in MLflow (one run per slot)."""
        base = spec or self.plan.cell_specs[job.cell.id]
        params = {**base.flat_params(), **overrides}
        tags = tags or {f"{TAG}cell": job.cell.id, f"{TAG}sweep_id": self.plan.sweep_id, f"{TAG}slot": job.key,
                        f"{TAG}trial": str(job.trial.number)}
        run_id = self.tracker.start_run(self.plan.spec.name, run_name=f"{job.cell.id} {job.phase} {job.slot}",
                                        parent_run_id=self.parent,
                                        tags={**tags, f"{TAG}phase": job.phase, f"{TAG}status": "failed",
                                              f"{TAG}error": error[:500]})
        self.tracker.log_params(run_id, params)
        self.tracker.end_run(run_id, "FAILED")
        return Outcome("failed", error=error, run_id=run_id)

    def _runs_of(self, slot_key: str, **search: Any) -> list[Any]:
        from nnlab.sweep._ledger import slot_runs

        return slot_runs(self.tracker, self.experiment_id, self.parent, slot_key, **search)

    def _find_run(self, slot_key: str) -> Any:
        done = [r for r in self._runs_of(slot_key, max_results=50) if r.info.status in ("FINISHED", "FAILED")]
        return min(done, key=lambda r: r.info.start_time) if done else None

    def _last_run_id(self, slot_key: str) -> str | None:
        runs = self._runs_of(slot_key, order_by=["attributes.start_time DESC"], max_results=1)
        return runs[0].info.run_id if runs else None

    def _adopt(self, job: Claimed, run: Any) -> Outcome:
        """A run that finished before its trial was told (a crash in between, or an Optuna storage
        that was lost while MLflow kept the runs): tell its result. A tune trial must carry the values
        the run had; one whose sampler offers others is given back for a copy that carries them."""
        values = {}
        for d in self.plan.dims:
            raw = run.data.params.get(d.key)
            if raw is not None:
                with contextlib.suppress(ValueError):
                    values[d.key] = d.from_param(raw)
        if job.phase == "tune" and values:
            if self.storage.retry(self._suggest, job) != values:
                from optuna.trial import TrialState

                self.storage.retry(job.trial.set_user_attr, STATUS, "requeued")
                self.storage.retry(job.study.tell, job.trial, state=TrialState.FAIL)
                params = {d.key: d.to_optuna(values[d.key]) for d in self.plan.dims if d.key in values}
                self.storage.retry(enqueue_slots, job.study, [job.slot], params)
                return Outcome("requeued", run_id=run.info.run_id, adopted=True)
        status = run.data.tags.get(f"{TAG}status", "completed" if run.info.status == "FINISHED" else "failed")
        outcome = Outcome(status, run_id=run.info.run_id, adopted=True, error=run.data.tags.get(f"{TAG}error"))
        if status == "completed":
            objective = self.plan.objective
            history = {}
            if self.plan.spec.train.early_stopping is not None:
                for key in {objective, "val_loss"}:
                    history[key] = [m.value for m in sorted(self.tracker.client.get_metric_history(
                        run.info.run_id, key), key=lambda m: m.step)]
            spec = self.plan.cell_specs[job.cell.id]
            epochs = int(run.data.metrics.get("epochs_trained", spec.train.epochs))
            outcome.value = objective_value(spec, objective, run.data.metrics, history, epochs)
        return outcome

    # -- Optuna: the outcome ---------------------------------------------------------------------
    def _record(self, job: Claimed, outcome: Outcome) -> Outcome:
        """Tell the outcome: attrs first, then the state, which makes it final. A trial failed meanwhile
        by a coordinator (it took this worker for dead) is left alone: its queued copy finds this run's
        result in MLflow and adopts it."""
        import optuna
        from optuna.trial import TrialState

        if outcome.status != "requeued":
            attrs: dict[str, Any] = {STATUS: outcome.status}
            if outcome.run_id:
                attrs[RUN_ID] = outcome.run_id
            if outcome.error:
                attrs[ERROR] = outcome.error[:500]
            if job.phase == "confirm":
                repeat = self.plan.repeat_values(job.cell, job.slot)
                attrs["nnlab_seeds"] = repeat  # every value the repeat set, by key
                attrs["nnlab_seed"] = repeat.get("train.seed", self.plan.cell_specs[job.cell.id].train.seed)
            state = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                     "diverged": TrialState.PRUNED}.get(outcome.status, TrialState.FAIL)
            value = outcome.value if state == TrialState.COMPLETE else None

            def tell() -> None:
                for key, val in attrs.items():
                    job.trial.set_user_attr(key, val)
                job.study.tell(job.trial, value, state=state, skip_if_finished=True)

            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                self.storage.retry(tell)
        shown = f" {self.plan.objective}={outcome.value:.5g}" if outcome.value is not None else ""
        note = " (adopted from MLflow)" if outcome.adopted else ""
        error = f": {outcome.error}" if outcome.error and outcome.status == "failed" else ""
        print(f"{job.key} trial {job.trial.number}: {outcome.status}{shown}{error}{note} "
              f"({outcome.seconds:.1f} s)", flush=True)
        return outcome


def _quietly(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or None when it fails: for the clean-up after a store failed."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - the store that failed may fail this too
        return None


def _states(study: Any) -> collections.Counter[Any]:
    """How many trials of ``study`` are in each state."""
    return collections.Counter(t.state for t in study.get_trials(deepcopy=False))


def _gpu() -> bool:
    """Whether TensorFlow sees a GPU in this worker."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _clear_session() -> None:
    """Keras's global state, dropped after every run. ``clear_session`` runs a full garbage collection
    itself; a second one right after found nothing to free and cost 0.35-0.5 s per run in a worker."""
    from nnlab.train._env import keras

    keras().backend.clear_session()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SpecError):
        return f"SpecError: {exc.key}: {exc.detail}" if exc.key else f"SpecError: {exc.detail}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}"[:500] if text else type(exc).__name__


# ------------------------------------------------------------------------------------------------
# the loop


def work_remains(snapshot: Any) -> bool:
    """Slots that may still become runnable here: waiting or running anywhere, in a cell not failed."""
    return any(v.active and not v.done for cell in snapshot.cells if not cell.failed
               for v in (*cell.tune, *cell.confirm))


def run_worker(job: WorkerJob, stop: Stop | None = None, *, watch_parent: bool = False) -> int:
    """Take and run slots until none is left, ``job.max_runs`` ran, or a stop is requested."""
    from nnlab.spec import Spec
    from nnlab.sweep._ledger import Ledger
    from nnlab.sweep._plan import build_plan
    from nnlab.sweep._storage import open_storage, resolve_target
    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker

    stop = stop or Stop()
    parent_pid = os.getppid()
    plan = build_plan(Spec.from_yaml(job.spec, job.overrides, job.profile), job.profile)
    if plan.sweep_hash != job.sweep_hash:
        raise SpecError(f"{plan.spec.source} changed while sweep '{plan.sweep_id}' runs (sweep hash "
                        f"{plan.sweep_hash}, expected {job.sweep_hash}); stop the sweep and start it again")
    store = resolve_store(job.tracking_uri, job.store_root)
    ledger = Ledger(plan, open_storage(resolve_target(store, job.storage), patient=True))
    runner = SlotRunner(plan, ledger, Tracker(store), job.parent_run_id, stop, job.workers)
    runs = 0
    while runs < job.max_runs and not stop.requested:
        if watch_parent and os.getppid() != parent_pid:
            print("the coordinator is gone; stopping", file=sys.stderr, flush=True)
            return EXIT_DONE
        claimed = runner.claim_next()
        if claimed is None:
            if not work_remains(ledger.snapshot()):
                return EXIT_DONE
            time.sleep(IDLE_POLL_REMOTE_S if ledger.storage.target.shared else IDLE_POLL_S)
            continue
        jobs = runner.claim_cohort(claimed, job.max_runs - runs)
        outcomes = runner.run_cohort(jobs) if len(jobs) > 1 else [runner.run(claimed)]
        runs += sum(outcome.status != "requeued" for outcome in outcomes)
    return EXIT_INTERRUPTED if stop.requested else EXIT_DONE


def preflight(request: dict[str, Any]) -> dict[str, Any]:
    """Load the first cell's data and build its model (writes nothing): the coordinator's check that
    the sweep can run at all, before it creates anything in a store."""
    from nnlab.spec import Spec
    from nnlab.sweep._plan import build_plan
    from nnlab.train import prepare
    from nnlab.train._env import configure_gpus

    cell = "?"
    pinned = request.get("gpus") or []
    if pinned and not configure_gpus():  # without this check every run would go to the CPU, silently
        return {"error": "fatal", "message": f"nvidia-smi lists {len(pinned)} GPU{'s' if len(pinned) > 1 else ''} "
                f"({', '.join(pinned)}), but TensorFlow sees none: its CUDA libraries are missing (install them with `make install GPU=1`, the `gpu` extra), "
                "or run on the CPU with CUDA_VISIBLE_DEVICES=-1"}
    try:
        plan = build_plan(Spec.from_yaml(request["spec"], request["overrides"], request["profile"]),
                          request["profile"])
        cell = plan.cells[0].id
        prepare(plan.cell_specs[cell])
    except SpecError as exc:
        return {"error": "spec", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported by the coordinator as one line
        return {"error": "fatal", "message": f"preflight of cell {cell} failed: {_one_line(exc)}"}
    finally:
        _clear_session()
    return {"ok": True}


def _redirect_output(path: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def serve(conn: Any, env: dict[str, str], early: str) -> None:
    """A worker process (``multiprocessing``'s forkserver or spawn): its own session, so that a
    terminal's Ctrl-C reaches only the coordinator; its environment; output to ``early`` until it has
    a job. Then answers a preflight if asked, and runs the job it gets (None: not needed)."""
    code = EXIT_CRASH
    try:
        os.setsid()
        _redirect_output(early)
        os.environ.clear()
        os.environ.update(env)
        stop = Stop()
        signal.signal(signal.SIGINT, stop.handler)
        signal.signal(signal.SIGTERM, stop.handler)
        from nnlab.train._env import apply_threads, configure_environment, keras

        configure_environment()
        keras()
        apply_threads()  # forked: TensorFlow was imported in the forkserver, without this worker's share
        message = conn.recv()
        while isinstance(message, dict) and "preflight" in message:
            conn.send(preflight(message["preflight"]))
            message = conn.recv()
        code = EXIT_DONE if message is None or stop.requested else _work(message, stop)
    except (EOFError, OSError):
        code = EXIT_DONE  # the coordinator is gone before it had work for this worker
    except BaseException:  # noqa: BLE001 - printed to the worker's output, as an uncaught error would be
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # every store write is committed; skip TensorFlow's slow interpreter teardown (~2 s)


def _work(job: WorkerJob, stop: Stop) -> int:
    if job.log:
        _redirect_output(job.log)
        print(f"--- worker {job.worker} (pid {os.getpid()}) started {time.strftime('%Y-%m-%d %H:%M:%S')}",
              flush=True)
    try:
        return run_worker(job, stop, watch_parent=True)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except NnlabError as exc:
        print(f"nnlab worker {job.worker}: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
        if isinstance(exc, DeviceFault):
            return EXIT_DEVICE_FAULT
        return EXIT_STORE_FAILED if isinstance(exc, StoreFailed) else EXIT_SETUP
    except Exception as exc:
        if no_space(exc) is None:
            raise
        print(f"nnlab worker {job.worker}: {no_space_message(exc, 'writing to the store')}", file=sys.stderr,
              flush=True)
        return EXIT_STORE_FAILED


def preload() -> None:
    """What a worker imports before its first run, imported once in the forkserver so that every worker
    forked from it starts with them (then frozen for the garbage collector, see ``freeze_imported``)."""
    from nnlab.train._env import configure_environment, freeze_imported, keras

    configure_environment()
    keras()
    import mlflow  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (opening a SQLite or database store needs it)
    import optuna  # noqa: F401

    import nnlab.data  # noqa: F401
    import nnlab.sweep._ledger  # noqa: F401
    import nnlab.tracking._mlflow  # noqa: F401
    import nnlab.train  # noqa: F401

    freeze_imported()


__all__ = ["SLOT", "Claimed", "Outcome", "SlotRunner", "Stop", "WorkerJob", "objective_value", "preflight",
           "run_worker", "serve"]
