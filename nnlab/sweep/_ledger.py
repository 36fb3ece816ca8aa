"""A sweep's record: its Optuna studies (one index study, a tune and a confirm study per cell) and
its MLflow parent run; plus the progress read back from them.

Study names: ``<sweep id>`` (the index: structure, hash, parent run id),
``<sweep id>/<cell id>/tune`` and ``<sweep id>/<cell id>/confirm``. Every process — coordinators
on several machines, workers — derives them from the plan, so none has to tell another.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from nnlab.errors import FatalError, SpecError
from nnlab.sweep._cells import Cell
from nnlab.sweep._plan import Plan, describe_changes
from nnlab.sweep._slots import ERROR, SLOT, SlotView, enqueue_slots, is_outcome, reconcile, slot_views
from nnlab.sweep._storage import SweepStorage

INDEX_ATTR = "nnlab"  # on the index study: sweep id, hash, structure, cells
PARENT_ATTR = "nnlab_parent_run_id"
READY_ATTR = "nnlab_ready"  # set once every slot is queued
TAG = "nnlab."
WAIT_FOR_CREATOR_S = 60.0


@dataclass
class CellProgress:
    cell: Cell
    tune: list[SlotView]
    confirm: list[SlotView]
    direction: str

    @property
    def tune_done(self) -> int:
        return sum(v.done for v in self.tune)

    @property
    def confirm_done(self) -> int:
        return sum(v.done for v in self.confirm)

    @property
    def running(self) -> int:
        return sum(len(v.running) for v in (*self.tune, *self.confirm))

    @property
    def tuning_finished(self) -> bool:
        return all(v.done for v in self.tune)

    @property
    def finished(self) -> bool:
        return self.tuning_finished and all(v.done for v in self.confirm)

    @property
    def failed(self) -> bool:
        """Every run that decides this cell failed: its tune trials, or (untuned) its confirm runs."""
        deciding = self.tune or self.confirm
        return bool(deciding) and all(v.done for v in deciding) and all(
            v.outcome.state.name == "FAIL" for v in deciding)

    @property
    def first_error(self) -> str:
        for view in self.tune or self.confirm:
            if view.outcome is not None and view.outcome.user_attrs.get(ERROR):
                return str(view.outcome.user_attrs[ERROR])
        return "unknown error"

    @property
    def best(self) -> Any:
        return best_trial([v.outcome for v in self.tune if v.done], self.direction)

    def confirm_values(self) -> list[float]:
        return [v.outcome.value for v in self.confirm if v.done and v.outcome.value is not None
                and v.outcome.state.name == "COMPLETE"]


@dataclass
class Snapshot:
    cells: list[CellProgress] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(c.tune_done + c.confirm_done for c in self.cells)

    @property
    def total(self) -> int:
        return sum(len(c.tune) + len(c.confirm) for c in self.cells)

    @property
    def running(self) -> int:
        return sum(c.running for c in self.cells)

    @property
    def finished(self) -> bool:
        return all(c.finished for c in self.cells)

    def failed_cells(self) -> list[CellProgress]:
        return [c for c in self.cells if c.failed]

    def waiting(self) -> int:
        return sum(len(v.waiting) for c in self.cells for v in (*c.tune, *c.confirm) if not v.done)


def best_trial(trials: list[Any], direction: str) -> Any:
    """The trial a cell's confirm runs repeat: best COMPLETE value (ties: lowest number); failing
    that, the pruned/diverged trial with the best last intermediate value; None if all failed."""
    sign = 1.0 if direction == "minimize" else -1.0
    ok = [t for t in trials if t is not None and t.state.name == "COMPLETE" and t.value is not None
          and math.isfinite(t.value)]
    if ok:
        return min(ok, key=lambda t: (sign * t.value, t.number))
    pruned = [t for t in trials if t is not None and t.state.name == "PRUNED"]
    if not pruned:
        return None

    def last(t: Any) -> float:
        values = [v for _, v in sorted(t.intermediate_values.items()) if math.isfinite(v)]
        return sign * values[-1] if values else math.inf

    return min(pruned, key=lambda t: (last(t), t.number))


class Ledger:
    """Access to a sweep's studies in one Optuna storage."""

    def __init__(self, plan: Plan, storage: SweepStorage) -> None:
        self.plan = plan
        self.storage = storage
        self._studies: dict[str, Any] = {}

    # -- studies ---------------------------------------------------------------------------------
    def _load(self, name: str) -> Any:
        if name not in self._studies:
            import optuna

            self._studies[name] = optuna.load_study(study_name=name, storage=self.storage.storage,
                                                    sampler=optuna.samplers.RandomSampler())
        return self._studies[name]

    def tune(self, cell: Cell) -> Any:
        return self._load(self.plan.tune_study(cell)) if self.plan.trials else None

    def confirm(self, cell: Cell) -> Any:
        return self._load(self.plan.confirm_study(cell)) if self.plan.seeds else None

    def index(self) -> Any:
        return self._load(self.plan.index_study)

    def index_attrs(self) -> dict[str, Any]:
        return dict(self.index().user_attrs)

    def exists(self) -> bool:
        return any(s.study_name == self.plan.index_study for s in self.storage.storage.get_all_studies())

    # -- reading ---------------------------------------------------------------------------------
    def cell_progress(self, cell: Cell) -> CellProgress:
        tune, confirm = self.tune(cell), self.confirm(cell)
        return CellProgress(
            cell=cell,
            tune=slot_views(tune.get_trials(deepcopy=False), self.plan.trials) if tune is not None else [],
            confirm=slot_views(confirm.get_trials(deepcopy=False), self.plan.seeds) if confirm is not None else [],
            direction=self.plan.direction)

    def snapshot(self) -> Snapshot:
        return self.storage.retry(lambda: Snapshot([self.cell_progress(cell) for cell in self.plan.cells]))

    def reconcile(self, tracker: Any = None, parent: str = "") -> list[str]:
        """Fail the trials of dead workers and queue their slots again; with a tracker, end their runs
        KILLED in MLflow too. Returns the slot key (``cell/phase/slot``) of each trial failed."""
        heartbeat = self.storage.target.heartbeat
        out: list[str] = []
        for cell in self.plan.cells:
            for phase, study, n in (("tune", self.tune(cell), self.plan.trials),
                                    ("confirm", self.confirm(cell), self.plan.seeds)):
                if study is not None:
                    lost = self.storage.retry(reconcile, study, n, heartbeat=heartbeat)
                    out.extend(f"{cell.id}/{phase}/{t.user_attrs.get(SLOT)}" for t in lost)
        if tracker is not None and out:
            end_lost_runs(tracker, self.plan.spec.name, parent, out)
        return out

    # -- opening (coordinators) ------------------------------------------------------------------
    def open(self, tracker: Any, *, restart: bool) -> str:
        """Create or resume the sweep's studies and parent run; returns the parent run id.

        Refuses (SpecError) a sweep whose structure changed unless ``restart``.
        """
        import optuna

        if restart:
            self._restart(tracker)
        plan = self.plan
        try:
            index = optuna.create_study(study_name=plan.index_study, storage=self.storage.storage,
                                        direction=plan.direction, sampler=optuna.samplers.RandomSampler())
            self._studies[plan.index_study] = index
            index.set_user_attr(INDEX_ATTR, self._index_record())
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            created = False
        if not created:
            record = self._wait_for(INDEX_ATTR)
            if record is not None:
                self._check_structure(record)
            if self._wait_for(READY_ATTR) is None:
                self._ensure(tracker)  # the creator died half-way: finish its work
        else:
            self._ensure(tracker)
        return self._resume_parent(tracker)

    def _index_record(self) -> dict[str, Any]:
        plan = self.plan
        return {"sweep_id": plan.sweep_id, "sweep_hash": plan.sweep_hash, "structure": plan.structure,
                "spec_name": plan.spec.name, "profile": plan.profile, "cells": [c.id for c in plan.cells],
                "trials": plan.trials, "seeds": plan.seeds, "objective": plan.objective,
                "direction": plan.direction}

    def _wait_for(self, attr: str) -> Any:
        deadline = time.monotonic() + WAIT_FOR_CREATOR_S
        while True:
            attrs = self.index_attrs()
            if attr in attrs or time.monotonic() > deadline:
                return attrs.get(attr)
            time.sleep(0.5)

    def check_existing(self) -> None:
        """Refuse a changed spec early (reads only): when the sweep's index study already exists."""
        for study in self.storage.storage.get_all_studies():
            if study.study_name == self.plan.index_study and INDEX_ATTR in study.user_attrs:
                self._check_structure(study.user_attrs[INDEX_ATTR])

    def _check_structure(self, record: dict[str, Any]) -> None:
        plan = self.plan
        if record.get("sweep_hash") == plan.sweep_hash:
            return
        changes = describe_changes(record.get("structure") or {}, plan.structure)
        file, line = plan.spec.where(changes[0][0] if changes else "sweep")
        first = changes[0][1] if changes else "the sweep's structure changed"
        more = f" (and {len(changes) - 1} more change{'s' if len(changes) > 2 else ''})" if len(changes) > 1 else ""
        raise SpecError(f"{first}{more} since sweep '{plan.sweep_id}' started in {self.storage.shown}; "
                        "run with --restart to start it over (its runs stay in MLflow, marked superseded)",
                        file=file, line=line)

    def _ensure(self, tracker: Any) -> None:
        """Idempotent: the parent run, then every cell study with all its slots queued."""
        import optuna

        plan = self.plan
        index = self.index()
        if INDEX_ATTR not in index.user_attrs:
            index.set_user_attr(INDEX_ATTR, self._index_record())
        if PARENT_ATTR not in index.user_attrs:
            parent = self._find_parent(tracker) or self._create_parent(tracker)
            index.set_user_attr(PARENT_ATTR, parent)
        for cell in plan.cells:
            for name, n, phase in ((plan.tune_study(cell), plan.trials, "tune"),
                                   (plan.confirm_study(cell), plan.seeds, "confirm")):
                if n == 0:
                    continue
                try:
                    study = optuna.create_study(study_name=name, storage=self.storage.storage,
                                                direction=plan.direction, sampler=optuna.samplers.RandomSampler())
                    self._studies[name] = study
                    study.set_user_attr(INDEX_ATTR, {"sweep_id": plan.sweep_id, "sweep_hash": plan.sweep_hash,
                                                     "cell": cell.id, "values": cell.values, "phase": phase,
                                                     "slots": n})
                    enqueue_slots(study, range(n))
                except optuna.exceptions.DuplicatedStudyError:
                    study = self._load(name)
                    if READY_ATTR not in study.user_attrs:
                        empty = [v.index for v in slot_views(study.get_trials(deepcopy=True), n)
                                 if not (v.done or v.active or v.lost)]
                        enqueue_slots(study, empty)
                study.set_user_attr(READY_ATTR, True)
        index.set_user_attr(READY_ATTR, True)

    # -- the MLflow parent run -------------------------------------------------------------------
    def _parent_tags(self) -> dict[str, str]:
        plan = self.plan
        return {f"{TAG}phase": "sweep", f"{TAG}sweep_id": plan.sweep_id, f"{TAG}sweep_hash": plan.sweep_hash,
                f"{TAG}spec_hash": plan.spec.spec_hash(), f"{TAG}spec_name": plan.spec.name,
                f"{TAG}source": plan.spec.source, f"{TAG}profile": plan.profile or "",
                f"{TAG}cells": str(len(plan.cells)), f"{TAG}runs_planned": str(plan.total_runs),
                f"{TAG}optuna_storage": self.storage.shown, f"{TAG}status": "running"}

    def _create_parent(self, tracker: Any) -> str:
        from nnlab.tracking._process import git_commit

        plan = self.plan
        run_id: str = tracker.start_run(plan.spec.name, run_name=plan.sweep_id,
                                        tags={**self._parent_tags(), f"{TAG}git_commit": git_commit()})
        import json

        params: dict[str, Any] = {
            "sweep.grid": json.dumps(plan.structure["sweep.grid"]),
            "sweep.tune": json.dumps(plan.structure["sweep.tune"]),
            "sweep.trials": plan.trials, "sweep.seeds": plan.seeds, "sweep.objective": plan.objective,
            "sweep.direction": plan.direction, "sweep.sampler": plan.spec.sweep.sampler,
            "sweep.pruner": plan.spec.sweep.pruner, "sweep.cells": len(plan.cells),
            "sweep.seed_keys": ",".join(plan.spec.sweep.seed_keys),
            # the fixed configuration, as the runs log theirs: only keys that act on this study's runs
            **{key: value for key, value in plan.spec.flat_params(applicable=True).items()
               if key in plan.structure["config"]},
        }
        tracker.log_params(run_id, params)
        tracker.log_text(run_id, plan.spec.to_yaml(), "spec.yaml")
        return run_id

    def _find_parent(self, tracker: Any) -> str | None:
        exp = tracker.experiment_id(self.plan.spec.name)
        runs = tracker.client.search_runs(
            [exp], filter_string=f"tags.`{TAG}sweep_id` = '{_q(self.plan.sweep_id)}' and "
                                 f"tags.`{TAG}sweep_hash` = '{self.plan.sweep_hash}' and "
                                 f"tags.`{TAG}phase` = 'sweep'",
            order_by=["attributes.start_time DESC"], max_results=20)
        runs = [r for r in runs if r.data.tags.get(f"{TAG}superseded") != "true"]
        return runs[0].info.run_id if runs else None

    def _resume_parent(self, tracker: Any) -> str:
        """The parent run, RUNNING again and owned by this process (for the stale-run reaper)."""
        import os
        import socket

        from nnlab.tracking._process import proc_start_time

        parent = str(self.index().user_attrs.get(PARENT_ATTR) or "")
        run = None
        if parent:
            try:
                run = tracker.client.get_run(parent)
            except Exception:  # noqa: BLE001 - gone, or another tracking store
                run = None
        if run is None or run.info.lifecycle_stage == "deleted":
            parent = self._find_parent(tracker) or self._create_parent(tracker)
            self.index().set_user_attr(PARENT_ATTR, parent)
            run = tracker.client.get_run(parent)
        if run.info.status != "RUNNING":
            tracker.client.update_run(parent, status="RUNNING")
        tracker.set_tags(parent, {f"{TAG}status": "running", f"{TAG}host": socket.gethostname(),
                                  f"{TAG}pid": str(os.getpid()), f"{TAG}proc_start": proc_start_time(os.getpid()),
                                  f"{TAG}heartbeat": str(int(time.time()))})
        return parent

    def _restart(self, tracker: Any) -> None:
        """Delete this sweep identity's studies and mark its old parent run (and children) superseded."""
        import optuna

        plan = self.plan
        prefix = plan.index_study + "/"
        studies = self.storage.storage.get_all_studies()
        old_parent = None
        for s in studies:
            if s.study_name == plan.index_study:
                old_parent = s.user_attrs.get(PARENT_ATTR)
        if old_parent:
            mark_superseded(tracker, str(old_parent))
        for s in sorted(studies, key=lambda s: s.study_name != plan.index_study):
            if s.study_name == plan.index_study or s.study_name.startswith(prefix):
                try:
                    optuna.delete_study(study_name=s.study_name, storage=self.storage.storage)
                except KeyError:
                    pass
        self._studies.clear()


def mark_superseded(tracker: Any, parent: str) -> None:
    try:
        run = tracker.client.get_run(parent)
    except Exception:  # noqa: BLE001 - not in this tracking store
        return
    tracker.set_tags(parent, {f"{TAG}superseded": "true", f"{TAG}status": "superseded"})
    if run.info.status == "RUNNING":
        tracker.end_run(parent, "KILLED")
    children = tracker.client.search_runs([run.info.experiment_id],
                                          filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=50000)
    for child in children:
        tracker.set_tags(child.info.run_id, {f"{TAG}superseded": "true"})


def slot_runs(tracker: Any, experiment_id: str, parent: str, key: str, *, running: bool = False,
              **search: Any) -> list[Any]:
    """The MLflow runs of slot ``key`` (``cell/phase/slot``) under the sweep's parent run (``running``: only
    those still RUNNING); ``search`` goes to ``search_runs`` (order, limit)."""
    status = " and attributes.status = 'RUNNING'" if running else ""
    return list(tracker.client.search_runs([experiment_id], filter_string=f"tags.`{TAG}slot` = '{_q(key)}'{status} "
                                           f"and tags.mlflow.parentRunId = '{parent}'", **search))


def end_lost_runs(tracker: Any, experiment: str, parent: str, slots: list[str]) -> None:
    """End KILLED the runs still RUNNING in MLflow of slots whose worker died."""
    exp = tracker.experiment_id(experiment)
    for key in slots:
        for run in slot_runs(tracker, exp, parent, key, running=True):
            tracker.set_tags(run.info.run_id, {f"{TAG}status": "killed"})
            tracker.end_run(run.info.run_id, "KILLED")


def end_parent(tracker: Any, parent: str, status: str) -> None:
    """status: completed (FINISHED), interrupted (KILLED) or failed (FAILED)."""
    mlflow_status = {"completed": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
    try:
        tracker.set_tags(parent, {f"{TAG}status": status})
        tracker.end_run(parent, mlflow_status)
    except Exception as exc:  # noqa: BLE001 - reported, the sweep's own result stands
        raise FatalError(f"could not close the sweep's parent run {parent}: {exc}") from None


def _q(text: str) -> str:
    """``text`` inside a quoted value of an MLflow search filter."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


__all__ = ["CellProgress", "Ledger", "Snapshot", "best_trial", "end_parent", "is_outcome", "mark_superseded"]
