"""A thin MLflow client for runs: batched writes, tags, artifacts, and reaping stale runs.

Per-epoch metrics (``log_epoch``) are written by a background thread, each epoch at most
``EPOCH_WRITE_S`` seconds after it ended, everything queued by then in one ``log_batch``: a write
to the SQLite store costs 8-15 ms (6-7 ms of CPU), as much as a whole epoch of a small model, so
training never waits on the store and a 15-epoch run of a few seconds makes 1-2 writes instead of
15. Every other write, and ``flush``, first waits until the queued epochs are written, so nothing
is lost when a run ends; a write that failed is raised at the next call.

Only this module (and the helper process of ``nnlab.tracking._remote``) imports mlflow.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from nnlab.errors import FatalError
from nnlab.tracking import _tags
from nnlab.tracking._process import git_commit, proc_start_time, process_alive
from nnlab.tracking._store import Store

TAG = "nnlab."
STALE_AFTER_S = float(os.environ.get("NNLAB_STALE_AFTER", "900"))
EPOCH_WRITE_S = 2.0  # an epoch's metrics reach the store at most this long after the epoch ended
BATCH_LIMIT = 1000  # MLflow's log_batch takes at most 1000 metrics and tags together
_SAFE_KEY = re.compile(r"[^A-Za-z0-9_\-./ ]")


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import logging

    for name in ("mlflow", "mlflow.store.db.utils", "alembic", "alembic.runtime.migration", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.ERROR)


class EpochWriter:
    """Queued per-epoch metrics, written by one daemon thread.

    ``write(run_id, metrics, tags)`` does the actual write. Whatever is queued is written together
    once the oldest of it has waited ``interval`` seconds; ``flush`` writes what is queued now and
    waits for it. A failed write is re-raised by the next ``put`` or ``flush``, once.
    """

    def __init__(self, write: Callable[[str, list[Any], list[Any]], None], interval: float) -> None:
        self._write = write
        self.interval = interval
        self._cond = threading.Condition()
        self._pending: dict[str, tuple[list[Any], dict[str, Any]]] = {}
        self._busy = False
        self._urgent = False
        self._oldest = 0.0  # when the oldest queued epoch was put
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def put(self, run_id: str, metrics: list[Any], tags: list[Any]) -> None:
        with self._cond:
            self._raise()
            if not self._pending:
                self._oldest = time.monotonic()
            queued, latest = self._pending.setdefault(run_id, ([], {}))
            queued.extend(metrics)
            latest.update({tag.key: tag for tag in tags})  # a newer heartbeat replaces an older one
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="nnlab-epoch-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            if self._pending or self._busy:
                self._urgent = True
                self._cond.notify_all()
                while self._pending or self._busy:
                    self._cond.wait()
                self._urgent = False
            self._raise()

    def take(self, run_id: str) -> tuple[list[Any], list[Any]]:
        """Remove what is queued for ``run_id`` and return it (metrics, tags), for the caller to write
        with its own next write; a write in progress is waited for first."""
        with self._cond:
            while self._busy:
                self._cond.wait()
            self._raise()
            metrics, tags = self._pending.pop(run_id, ([], {}))
            return metrics, list(tags.values())

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending or not (self._urgent or time.monotonic() - self._oldest >= self.interval):
                    wait = None if not self._pending else self.interval - (time.monotonic() - self._oldest)
                    self._cond.wait(wait)
                batch, self._pending = self._pending, {}
                self._busy = True
            try:
                for run_id, (metrics, tags) in batch.items():
                    self._write(run_id, metrics, list(tags.values()))
            except Exception as exc:  # noqa: BLE001 - handed to the training thread
                with self._cond:
                    self._error = self._error or exc
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class Tracker:
    """Writes runs of one store. Create one per process; it is cheap to keep."""

    def __init__(self, store: Store) -> None:
        _quiet_mlflow()
        import mlflow
        from mlflow import MlflowClient

        _quiet_mlflow()  # mlflow resets its loggers on import

        self.store = store
        self._mlflow = mlflow
        if store.embedded:
            store.ensure()
            from nnlab.tracking._template import seed_store

            seed_store(store)  # a new store: a copy of the migrated empty database, not the migrations
        try:
            self.client = MlflowClient(tracking_uri=store.tracking_uri)
            # touch the store now so an unreachable server fails before any training
            self.client.search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - any failure here means the store is unusable
            raise FatalError(f"tracking store {store.tracking_uri} is not usable: {_reason(exc)}") from None
        self._experiments: dict[str, str] = {}
        self._experiment_tags: dict[str, dict[str, str]] = {}  # as read or written by this process
        self._epochs = EpochWriter(self._write_batch, EPOCH_WRITE_S)

    # -- experiments and runs --------------------------------------------------------------------
    def experiment_id(self, name: str, *, create: bool = True) -> str | None:
        """The experiment's id. With ``create`` (a command about to write to it) it is created if missing,
        restored if deleted, and tagged as a model-development experiment (``_tags.EXPERIMENT_KIND``) if it
        is not of a kind yet: once per experiment and process."""
        if name in self._experiments:
            return self._experiments[name]
        exp = self.client.get_experiment_by_name(name)
        if exp is None:
            if not create:
                return None
            location = None
            if self.store.embedded:
                location = (self.store.artifact_root.resolve() / name).as_uri()
            try:
                exp_id = self.client.create_experiment(
                    name, artifact_location=location,
                    tags={_tags.EXPERIMENT_KIND: _tags.CUSTOM_MODEL_DEVELOPMENT})
                self._experiment_tags[name] = {_tags.EXPERIMENT_KIND: _tags.CUSTOM_MODEL_DEVELOPMENT}
            except Exception:  # noqa: BLE001 - another worker created it first
                exp = self.client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp is not None:
            if not create:
                return str(exp.experiment_id)
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            exp_id = exp.experiment_id
            tags = dict(exp.tags)
            if _tags.EXPERIMENT_KIND not in tags:  # an experiment from before nnlab tagged them
                self.client.set_experiment_tag(exp_id, _tags.EXPERIMENT_KIND, _tags.CUSTOM_MODEL_DEVELOPMENT)
                tags[_tags.EXPERIMENT_KIND] = _tags.CUSTOM_MODEL_DEVELOPMENT
            self._experiment_tags[name] = tags
        self._experiments[name] = exp_id
        return exp_id

    def tag_experiments(self) -> list[str]:
        """Tag as model development the experiments of this store that hold nnlab's runs and are of no kind
        yet (made before nnlab tagged them); returns their names. For ``nnlab ui``, before the UI opens."""
        from mlflow.entities import ViewType

        tagged = []
        for exp in self.client.search_experiments(view_type=ViewType.ACTIVE_ONLY, max_results=50_000):
            if _tags.EXPERIMENT_KIND in exp.tags:
                continue
            if self.client.search_runs([exp.experiment_id], filter_string=f"tags.`{TAG}pid` LIKE '%'",
                                       max_results=1):
                self.client.set_experiment_tag(exp.experiment_id, _tags.EXPERIMENT_KIND,
                                               _tags.CUSTOM_MODEL_DEVELOPMENT)
                tagged.append(exp.name)
        return tagged

    def model_experiments(self, limit: int = 8) -> list[tuple[str, str]]:
        """(id, name) of the store's model-development experiments, the most recently updated first."""
        found = self.client.search_experiments(
            filter_string=f"tags.`{_tags.EXPERIMENT_KIND}` = '{_tags.CUSTOM_MODEL_DEVELOPMENT}'",
            order_by=["last_update_time DESC"], max_results=limit)
        return [(str(e.experiment_id), str(e.name)) for e in found]

    def describe_experiment(self, name: str, text: str) -> None:
        """The experiment's description (``mlflow.note.content``, shown above its runs), written when it
        differs from the stored one: at most one write per experiment and process."""
        text = text.strip()
        exp_id = str(self.experiment_id(name))
        tags = self._experiment_tags.setdefault(name, {})
        if not text or tags.get(_tags.NOTE) == text:
            return
        self.client.set_experiment_tag(exp_id, _tags.NOTE, text[:_tags.EXPERIMENT_TAG_LIMIT])
        tags[_tags.NOTE] = text

    def set_note(self, run_id: str, text: str, replace: bool = True) -> None:
        """A run's description (``mlflow.note.content``, markdown); ``replace=False`` keeps one it has."""
        if not replace and _tags.NOTE in self.client.get_run(run_id).data.tags:
            return
        self.set_tags(run_id, {_tags.NOTE: text})

    def start_run(self, experiment: str, *, run_name: str, tags: dict[str, str],
                  parent_run_id: str | None = None) -> str:
        """A new RUNNING run, with MLflow's standard tags (user, source type, git commit; the source name
        from the caller's ``mlflow.source.name``) besides the caller's and nnlab's liveness tags."""
        all_tags = {
            **standard_tags(),
            f"{TAG}host": socket.gethostname(),
            f"{TAG}pid": str(os.getpid()),
            f"{TAG}proc_start": proc_start_time(os.getpid()),
            f"{TAG}heartbeat": str(int(time.time())),
            **{_tags.RENAMED.get(key, key): value for key, value in tags.items()},
        }
        if parent_run_id:
            all_tags[_tags.PARENT_RUN_ID] = parent_run_id
        exp_id = self.experiment_id(experiment)
        assert exp_id is not None
        run = self.client.create_run(exp_id, tags=all_tags, run_name=run_name)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.flush()
        items = [Param(_key(k), _param_value(v)) for k, v in params.items() if v is not None]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i: i + 100])

    def log_inputs(self, run_id: str, inputs: list[dict[str, Any]]) -> None:
        """The run's datasets, as ``nnlab.tracking._inputs.split_inputs`` describes them."""
        import json

        import numpy as np
        from mlflow.data.schema import TensorDatasetSchema
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.types import Schema, TensorSpec

        def schema(item: dict[str, Any]) -> str:
            features, targets = (Schema([TensorSpec(np.dtype(item[part]["dtype"]), tuple(item[part]["shape"]))])
                                 for part in ("features", "targets"))
            return json.dumps(TensorDatasetSchema(features=features, targets=targets).to_dict())

        datasets = [DatasetInput(Dataset(name=item["name"], digest=item["digest"], source_type=item["source_type"],
                                         source=item["source"], schema=schema(item), profile=item["profile"]),
                                 tags=[InputTag(_tags.DATASET_CONTEXT, item["context"])]) for item in inputs]
        if datasets:
            self.flush()
            for attempt in range(3):
                try:
                    self.client.log_inputs(run_id, datasets=datasets)
                    return
                except Exception as exc:
                    # MLflow looks a dataset up, then inserts it: workers that log the same dataset at once
                    # race, and all but one hit the unique key. The retry finds the row and links to it.
                    if attempt == 2 or not _lost_insert_race(exc):
                        raise

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int, *,
                    heartbeat: bool = True) -> None:
        """All of one step's metrics in one write now (plus a heartbeat tag), together with the run's
        queued epochs: the end of a short run makes one write, not two (each is a transaction)."""
        queued, queued_tags = self._epochs.take(run_id)
        items, tags = _metric_items(metrics, step, heartbeat)
        latest = {tag.key: tag for tag in [*queued_tags, *tags]}  # this heartbeat replaces a queued one
        self._write_batch(run_id, queued + items, list(latest.values()))

    def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """One epoch's metrics, queued: written in the background (see the module doc)."""
        items, tags = _metric_items(metrics, step, True)
        self._epochs.put(run_id, items, tags)

    def flush(self) -> None:
        """Write the queued epochs now and wait; raises the error of a failed background write."""
        self._epochs.flush()

    def _write_batch(self, run_id: str, metrics: list[Any], tags: list[Any]) -> None:
        for i in range(0, max(1, len(metrics)), BATCH_LIMIT - len(tags)):
            self.client.log_batch(run_id, metrics=metrics[i: i + BATCH_LIMIT - len(tags)], tags=tags)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.flush()
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:_tags.RUN_TAG_LIMIT]) for k, v in tags.items()])

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.flush()
        self.client.log_text(run_id, text, name)

    def log_figure(self, run_id: str, figure: Any, name: str) -> None:
        self.flush()
        self.client.log_figure(run_id, figure, name)

    def log_drawn(self, run_id: str, name: str, draw: Callable[..., Any], *args: Any) -> None:
        """Log the figure ``draw(*args)`` returns (drawn where the tracker lives: see ``_remote``)."""
        self.log_figure(run_id, draw(*args), name)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.flush()
        self.client.log_artifact(run_id, str(path), artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        """status: FINISHED, FAILED or KILLED. Queued epochs are written first."""
        try:
            self.flush()
        finally:
            self.client.set_terminated(run_id, status=status)

    # -- stale runs ---------------------------------------------------------------------------------
    def reap_stale_runs(self, experiment_ids: list[str] | None = None) -> list[str]:
        """Mark KILLED the RUNNING runs whose process is gone (same host) or whose heartbeat is stale."""
        from mlflow.entities import ViewType

        if experiment_ids is None:
            experiment_ids = [e.experiment_id for e in self.client.search_experiments(view_type=ViewType.ALL)]
        if not experiment_ids:
            return []
        host = socket.gethostname()
        now = time.time()
        reaped = []
        runs = self.client.search_runs(experiment_ids, filter_string="attributes.status = 'RUNNING'",
                                       max_results=5000)
        for run in runs:
            tags = run.data.tags
            if f"{TAG}pid" not in tags:
                continue  # not ours
            dead = False
            if tags.get(f"{TAG}host") == host:
                dead = not process_alive(int(tags[f"{TAG}pid"]), tags.get(f"{TAG}proc_start", ""))
            else:
                beat = float(tags.get(f"{TAG}heartbeat", run.info.start_time / 1000))
                dead = now - beat > STALE_AFTER_S
            if dead:
                self.set_tags(run.info.run_id, {f"{TAG}status": "killed"})
                self.end_run(run.info.run_id, "KILLED")
                reaped.append(run.info.run_id)
        return reaped


def _metric_items(metrics: dict[str, float], step: int, heartbeat: bool) -> tuple[list[Any], list[Any]]:
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    items = [Metric(_key(k), float(v), now, step) for k, v in metrics.items() if v is not None]
    tags = [RunTag(f"{TAG}heartbeat", str(int(time.time())))] if heartbeat else []
    return items, tags


def _lost_insert_race(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "unique constraint" in text or "duplicate key" in text or "integrityerror" in text


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _key(key: str) -> str:
    return _SAFE_KEY.sub("_", key)[:250]


def _param_value(value: Any) -> str:
    return str(value)[:6000]


@lru_cache(maxsize=1)
def standard_tags() -> dict[str, str]:
    """MLflow's tags of who ran a run and from which commit (``_tags``), as MLflow's own runs have them."""
    from mlflow.entities import SourceType

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = f"uid {os.getuid()}"
    out = {_tags.USER: user, _tags.SOURCE_TYPE: SourceType.to_string(SourceType.LOCAL)}
    commit = git_commit()
    if commit:
        out[_tags.GIT_COMMIT] = commit
    return out
