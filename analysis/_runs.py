"""Reading runs from MLflow in bulk, and choosing the runs of a study.

The main table comes from ``search_runs`` (params, final metrics and tags of thousands of runs in
a few paged queries, never one call per run): one row per run with ``run_id, status, phase, cell,
sweep_id, slot, trial, seed_index, parent_run_id, start_time, end_time``, every param as
``param:<key>`` read back as the type the spec declares for it (``nnlab.spec.param_value``), every
metric's final value as ``<metric>``.

Per-epoch histories are read only for the few runs a figure draws, in bulk on a database store,
and cached on disk under ``<store>/cache/analysis/`` keyed by run id and end time (a finished run
never changes).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis._labels import py
from nnlab.errors import FatalError, SpecError
from nnlab.registry import did_you_mean
from nnlab.spec import param_value

SEARCH_MAX = 1_000_000  # runs one search reads (MLflow pages through them)
PARAM = "param:"
META_COLUMNS = ("run_id", "run_name", "experiment", "status", "mlflow_status", "phase", "cell", "device", "sweep_id",
                "slot", "trial", "seed_index", "parent_run_id", "start_time", "end_time")
HISTORY_COLUMNS = ("run_id", "key", "step", "value")
_MLFLOW_STATUS = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "killed", "RUNNING": "running",
                  "SCHEDULED": "running"}
_INT = re.compile(r"^[+-]?\d+$")


def normalize(value: Any) -> Any:
    """A spec value in the form parsed params take (lists become tuples)."""
    if isinstance(value, list):
        return tuple(normalize(v) for v in value)
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equality of spec values that respects types (True is not 1) and float round-off."""
    a, b = normalize(py(a)), normalize(py(b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return bool(a == b)


def mask_where(runs: pd.DataFrame, values: dict[str, Any]) -> pd.Series:
    """Rows whose params equal every ``key: value`` (a missing param column matches nothing)."""
    mask = pd.Series(True, index=runs.index)
    for key, value in values.items():
        col = PARAM + key
        if col not in runs.columns:
            return pd.Series(False, index=runs.index)
        mask &= runs[col].map(lambda v, want=value: same_value(v, want)).astype(bool)
    return mask


def _int_or_none(text: str | None) -> int | None:
    if text is None or not _INT.match(text.strip()):
        return None
    return int(text)


def _table(base: Iterable[Sequence[Any]], tags: Iterable[Sequence[Any]], metrics: Iterable[Sequence[Any]],
           params: Iterable[Sequence[Any]], experiment: str) -> pd.DataFrame:
    """The main table, column by column, from rows as MLflow's tables hold them: ``base`` (run_id, name,
    MLflow status, start, end), ``tags`` (run_id, key, text), ``metrics`` (run_id, key, final value,
    NaN included) and ``params`` (run_id, key, text). Runs newest first, as ``search_runs`` orders them;
    a metric named like a main column is ``metric:<name>``."""
    base = sorted(base, key=lambda row: (-(row[3] or 0), row[0]))
    if not base:
        return _frame([])
    at = {row[0]: i for i, row in enumerate(base)}
    n = len(base)

    def fill(rows: Iterable[Sequence[Any]], missing: Any, convert: Any = None) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {}
        for rid, key, value in rows:
            values = columns.get(key)
            if values is None:  # (not setdefault: that would build the default list for every row)
                values = columns[key] = [missing] * n
            values[at[rid]] = convert(value) if convert is not None else value
        return columns

    run_tags = fill(tags, None)
    none: list[str | None] = [None] * n
    tag = run_tags.get
    mlflow_status = [str(row[2]) for row in base]
    columns: dict[str, list[Any]] = {
        "run_id": [row[0] for row in base], "run_name": [row[1] for row in base], "experiment": [experiment] * n,
        "status": [t or _MLFLOW_STATUS.get(m, m.lower()) for t, m in zip(tag("nnlab.status", none), mlflow_status,
                                                                         strict=True)],
        "mlflow_status": mlflow_status,
        "phase": [p or "run" for p in tag("nnlab.phase", none)], "cell": tag("nnlab.cell", none),
        "device": tag("nnlab.device", none),
        "sweep_id": tag("nnlab.sweep_id", none), "slot": tag("nnlab.slot", none),
        "trial": [_int_or_none(v) for v in tag("nnlab.trial", none)],
        "seed_index": [_int_or_none(v) for v in tag("nnlab.seed_index", none)],
        "parent_run_id": tag("mlflow.parentRunId", none),
        "start_time": [row[3] for row in base], "end_time": [row[4] for row in base],
    }
    for key, values in fill(metrics, math.nan, float).items():
        columns[key if key not in columns else f"metric:{key}"] = values
    for key, texts in fill(params, None).items():  # each column read by its spec type, once per distinct text
        typed = {text: param_value(key, text) for text in set(texts) if text is not None}
        columns[PARAM + key] = [math.nan if text is None else typed[text] for text in texts]
    return _typed(pd.DataFrame(columns))


def search_frame(found: pd.DataFrame, experiment: str = "") -> pd.DataFrame:
    """``mlflow.search_runs(output_format="pandas")``'s frame to the main table (see the module docstring)."""
    if found.empty:
        return _frame([])

    def millis(value: Any) -> int | None:
        return None if value is None or pd.isna(value) else int(pd.Timestamp(value).value // 1_000_000)

    def prefixed(prefix: str) -> list[tuple[str, str]]:
        return [(col, col[len(prefix):]) for col in found.columns if col.startswith(prefix)]

    ids = found["run_id"].tolist()
    records = found.to_dict("list")

    def cells(prefix: str, keep: Any) -> list[tuple[str, str, Any]]:
        return [(rid, key, value) for col, key in prefixed(prefix)
                for rid, value in zip(ids, records[col], strict=True) if keep(value)]

    def present(value: Any) -> bool:  # pandas fills a run's absent tags and params with None (or NaN)
        return value is not None and not (isinstance(value, float) and math.isnan(value))

    names = records.get("tags.mlflow.runName", [None] * len(ids))
    return _table([(rid, name, str(status), millis(start), millis(end)) for rid, name, status, start, end in zip(
                      ids, names, records["status"], records["start_time"], records["end_time"], strict=True)],
                  cells("tags.", present), cells("metrics.", lambda v: True), cells("params.", present), experiment)


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return _typed(pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(META_COLUMNS)))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Trial and seed numbers as nullable integers (a run outside a sweep has neither)."""
    for col in ("trial", "seed_index"):
        frame[col] = frame[col].astype("Int64")
    return frame


def param_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith(PARAM)]


def metric_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c not in META_COLUMNS and not c.startswith(PARAM)]


# ------------------------------------------------------------------------------------------------
# the reader


class RunReader:
    """Bulk reads of one store; remembers end times so histories of finished runs are cached.

    A SQLite store (the embedded one included) is read with the standard library's ``sqlite3``,
    read-only, without importing MLflow at all (that import alone is over a second); MLflow's
    client is made on first need: artifacts, servers, other databases, or a SQLite file whose
    tables are not MLflow's as expected.
    """

    def __init__(self, store: Any, *, cache: bool = True) -> None:
        self.store = store
        self.uri = store.tracking_uri
        self.empty = bool(store.embedded and not store.db_path.exists())
        self.db: SqliteRuns | None = None if self.empty else SqliteRuns.open(self.uri)
        self._client: Any = None
        self.cache_dir: Path | None = (Path(store.root) / "cache" / "analysis" / "histories") if cache else None
        self._ended: dict[str, int | None] = {}
        self._experiments: dict[str, Any] | None = None

    @property
    def client(self) -> Any:
        """MLflow's client (None for an embedded store that holds nothing yet), made on first use."""
        if self.empty:
            return None
        if self._client is None:
            from nnlab.tracking._mlflow import _quiet_mlflow

            _quiet_mlflow()
            from mlflow import MlflowClient

            _quiet_mlflow()
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _direct(self, read: Any) -> Any:
        """``read(db)`` on the SQLite file, or None (and MLflow's client from then on) when it fails."""
        if self.db is None:
            return None
        try:
            return read(self.db)
        except sqlite3.Error:
            self.db = None
            return None

    # -- experiments -----------------------------------------------------------------------------
    def experiments(self) -> dict[str, Any]:
        """Active experiments by name."""
        if self.empty:
            return {}
        if self._experiments is None:
            found = self._direct(SqliteRuns.experiments)
            if found is None:
                try:
                    found = self.client.search_experiments(max_results=50_000)
                except Exception as exc:  # noqa: BLE001 - a server down or a database that is not MLflow's
                    raise FatalError(f"cannot read the tracking store {self.uri}: {_reason(exc)}") from None
            self._experiments = {e.name: e for e in found}
        return self._experiments

    def study_names(self) -> list[str]:
        """Experiments that hold at least one run."""
        experiments = self.experiments()
        with_runs = self._direct(SqliteRuns.experiments_with_runs)
        if with_runs is not None:
            return sorted(name for name, exp in experiments.items() if exp.experiment_id in with_runs)
        names = []
        for name, exp in sorted(experiments.items()):
            if self.client.search_runs([exp.experiment_id], max_results=1):
                names.append(name)
        return names

    # -- runs ------------------------------------------------------------------------------------
    def search(self, experiment: str, tags: dict[str, str] | None = None) -> pd.DataFrame:
        """Every active run of ``experiment`` whose tags equal ``tags``, as the main table.

        On a database store this reads four tables with plain SQL (runs, tags, params, latest
        metrics: a second for thousands of runs); on a server it pages through ``search_runs``.
        """
        exp = self.experiments().get(experiment)
        if exp is None or self.empty:
            return _frame([])
        tags = tags or {}
        frame = self._direct(lambda db: db.frame(exp.experiment_id, tags, experiment))
        if frame is None:
            frame = self._api_frame(exp.experiment_id, tags, experiment)
        ended = frame["end_time"].where(frame["mlflow_status"] != "RUNNING", None)
        self._ended.update(zip(frame["run_id"], (None if pd.isna(e) else int(e) for e in ended), strict=True))
        return frame

    def _api_frame(self, experiment_id: str, tags: dict[str, str], experiment: str) -> pd.DataFrame:
        """The main table through MLflow's public ``search_runs`` (every store MLflow reads: servers, other
        databases); the SQLite fast path is tested against it."""
        assert self.client is not None
        import mlflow

        filter_string = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        before = mlflow.get_tracking_uri()  # search_runs reads the process-wide URI: set it for this call only
        mlflow.set_tracking_uri(self.uri)
        try:
            found = mlflow.search_runs(experiment_ids=[experiment_id], filter_string=filter_string,
                                       output_format="pandas", max_results=SEARCH_MAX)
        except Exception as exc:  # noqa: BLE001
            raise FatalError(f"cannot read runs of {experiment!r} from {self.uri}: {_reason(exc)}") from None
        finally:
            mlflow.set_tracking_uri(before)
        return search_frame(found, experiment)

    def artifact_text(self, run_id: str, path: str) -> str | None:
        """The text of one small artifact, or None when the run has no such file."""
        if self.client is None:
            return None
        import tempfile

        try:
            names = {f.path for f in self.client.list_artifacts(run_id)}
            if path not in names:
                return None
            with tempfile.TemporaryDirectory() as tmp:
                local = self.client.download_artifacts(run_id, path, tmp)
                return Path(local).read_text()
        except Exception:  # noqa: BLE001 - an unreadable artifact is treated as absent
            return None

    # -- histories -------------------------------------------------------------------------------
    def history(self, run_ids: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
        """Per-epoch values of ``keys`` for ``run_ids``: a long frame run_id, key, step, value."""
        run_ids = list(dict.fromkeys(run_ids))
        keys = list(dict.fromkeys(keys))
        if not run_ids or not keys or self.empty:
            return pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
        cached: dict[str, dict[str, list[list[float]]]] = {rid: self._cache_read(rid) for rid in run_ids}
        missing = {rid: [k for k in keys if k not in cached[rid]] for rid in run_ids}
        by_key: dict[str, list[str]] = {}
        for rid, ks in missing.items():
            for k in ks:
                by_key.setdefault(k, []).append(rid)
        for key, rids in by_key.items():
            fetched = self._fetch(rids, key)
            for rid in rids:
                cached[rid][key] = fetched.get(rid, [])
        for rid in run_ids:
            if missing[rid]:
                self._cache_write(rid, cached[rid])
        rows = [(rid, key, int(step), float(value)) for rid in run_ids for key in keys
                for step, value in cached[rid].get(key, [])]
        return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))

    def _fetch(self, run_ids: list[str], key: str) -> dict[str, list[list[float]]]:
        direct = self._direct(lambda db: db.history(run_ids, key))
        if direct is not None:
            return {rid: [[step, v] for step, v in sorted(steps.items())] for rid, steps in direct.items()}
        out: dict[str, dict[int, float]] = {}
        assert self.client is not None
        client = self.client
        try:  # one call per run, in parallel
            with ThreadPoolExecutor(max_workers=8) as pool:
                results = pool.map(lambda rid: (rid, client.get_metric_history(rid, key)), run_ids)
                for rid, metrics in results:
                    for m in metrics:
                        out.setdefault(rid, {})[int(m.step)] = float(m.value)
        except Exception as exc:  # noqa: BLE001
            raise FatalError(f"cannot read metric history {key!r} from {self.uri}: {_reason(exc)}") from None
        return {rid: [[step, v] for step, v in sorted(steps.items())] for rid, steps in out.items()}

    def _cache_path(self, run_id: str) -> Path | None:
        end = self._ended.get(run_id)
        if self.cache_dir is None or end is None:
            return None
        return self.cache_dir / run_id[:2] / f"{run_id}-{end}.json"

    def _cache_read(self, run_id: str) -> dict[str, list[list[float]]]:
        path = self._cache_path(run_id)
        if path is None or not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _cache_write(self, run_id: str, data: dict[str, list[list[float]]]) -> None:
        path = self._cache_path(run_id)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(path)
        except OSError:
            pass  # a read-only store: no cache, same result


@dataclass(frozen=True)
class _Experiment:
    experiment_id: str
    name: str


class SqliteRuns:
    """Read-only queries on an MLflow SQLite file: the tables ``experiments``, ``runs``, ``tags``,
    ``params``, ``latest_metrics`` and ``metrics``, as MLflow's SQL store writes them."""

    TABLES = frozenset({"experiments", "runs", "tags", "params", "latest_metrics", "metrics"})

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, uri: str) -> SqliteRuns | None:
        """For a ``sqlite:///`` URI of an existing file with MLflow's tables; else None."""
        if not uri.startswith("sqlite:///"):
            return None
        path = Path(uri[len("sqlite:///"):].split("?", 1)[0])
        if not path.is_file():
            return None
        db = cls(path)
        try:
            with db.connect() as conn:
                names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.Error:
            return None
        return db if cls.TABLES <= names else None

    def connect(self) -> Any:
        from contextlib import closing

        conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        return closing(conn)

    def experiments(self) -> list[_Experiment]:
        with self.connect() as conn:
            rows = conn.execute("SELECT experiment_id, name FROM experiments WHERE lifecycle_stage = 'active'")
            return [_Experiment(str(eid), name) for eid, name in rows]

    def experiments_with_runs(self) -> set[str]:
        with self.connect() as conn:
            rows = conn.execute("SELECT DISTINCT experiment_id FROM runs WHERE lifecycle_stage = 'active'")
            return {str(eid) for (eid,) in rows}

    def frame(self, experiment_id: str, tags: dict[str, str], experiment: str) -> pd.DataFrame:
        """The main table: active runs of the experiment whose tags equal ``tags``."""
        where = ["r.experiment_id = ?", "r.lifecycle_stage = 'active'"]
        args: list[Any] = [int(experiment_id)]
        for key, value in tags.items():
            where.append("r.run_uuid IN (SELECT run_uuid FROM tags WHERE key = ? AND value = ?)")
            args += [key, value]
        runs = f"SELECT r.run_uuid FROM runs r WHERE {' AND '.join(where)}"
        with self.connect() as conn:
            base = conn.execute(f"SELECT r.run_uuid, r.name, r.status, r.start_time, r.end_time FROM runs r "
                                f"WHERE {' AND '.join(where)}", args).fetchall()
            return _table(
                base,
                conn.execute(f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({runs}) "
                             "AND (key LIKE 'nnlab.%' OR key = 'mlflow.parentRunId')", args),
                ((rid, key, math.nan if is_nan else value) for rid, key, value, is_nan in conn.execute(
                    f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({runs})", args)),
                conn.execute(f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({runs})", args),
                experiment)

    def history(self, run_ids: list[str], key: str) -> dict[str, dict[int, float]]:
        """Every logged value of ``key`` for ``run_ids`` by step (the last logged wins, as MLflow orders)."""
        out: dict[str, dict[int, float]] = {}
        with self.connect() as conn:
            for i in range(0, len(run_ids), 500):
                part = run_ids[i: i + 500]
                marks = ",".join("?" * len(part))
                for rid, step, value, is_nan in conn.execute(
                        f"SELECT run_uuid, step, value, is_nan FROM metrics WHERE key = ? AND run_uuid IN ({marks}) "
                        "ORDER BY run_uuid, timestamp, step, value", [key, *part]):
                    out.setdefault(rid, {})[int(step)] = float("nan") if is_nan else float(value)
        return out


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# ------------------------------------------------------------------------------------------------
# a study's runs


@dataclass
class StudyRuns:
    """The runs a report reads for one study, and where they came from."""

    name: str
    spec: Any
    runs: pd.DataFrame
    tracking_uri: str
    sweep_id: str | None = None
    parent_run_id: str | None = None
    sweeps_found: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        n = len(self.runs)
        if self.parent_run_id:
            older = len(self.sweeps_found) - 1
            extra = f"; {older} older sweep(s) of this study not shown" if older > 0 else ""
            return f"sweep {self.sweep_id} (parent run {self.parent_run_id}, {n} runs{extra})"
        return f"{n} single runs (nnlab run) of experiment {self.name}"


def _spec_from_store(reader: RunReader, name: str, profile: str | None) -> Any:
    """The spec a sweep logged (``spec.yaml`` on the parent or a child run), or None."""
    import tempfile

    from nnlab.spec import Spec

    candidates = reader.search(name, {"nnlab.phase": "sweep"})
    if candidates.empty:
        candidates = reader.search(name)
    for run_id in candidates.sort_values("start_time", ascending=False)["run_id"].head(5):
        text = reader.artifact_text(run_id, "spec.yaml")
        if text is None:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(text)
            spec = Spec.from_yaml(path)
        spec._attach(f"{name} (spec logged in {reader.uri})", None)
        return spec
    return None


def load_spec(arg: str, profile: str | None, reader: RunReader) -> Any:
    """A spec file, a study name in experiments/, or (failing both) a study in the store."""
    from nnlab.spec import Spec, available_studies, resolve_spec_path

    try:
        path = resolve_spec_path(arg)
    except SpecError:
        in_store = reader.study_names()
        if arg in in_store:
            spec = _spec_from_store(reader, arg, profile)
            if spec is not None:
                return spec
        known = available_studies()
        names = sorted(set(known) | set(in_store))
        raise SpecError(f"no study named {arg!r} (no such spec file, no experiments/{arg}.yaml, no runs in the "
                        f"store); studies with runs in {reader.uri}: {', '.join(in_store) or '(none)'}; spec files "
                        f"in experiments/: {', '.join(known) or '(none)'}{did_you_mean(arg, names)}",
                        file="<command line>", line=1) from None
    return Spec.from_yaml(path, (), profile)


def _no_runs(name: str, reader: RunReader, detail: str = "") -> SpecError:
    names = [n for n in reader.study_names() if n != "Default"]
    return SpecError(f"no runs of study {name!r} in {reader.uri}{detail}; studies in this store: "
                     f"{', '.join(names) or '(none)'}{did_you_mean(name, names)}", file="<command line>", line=1)


def select_runs(spec: Any, reader: RunReader, profile: str | None = None) -> StudyRuns:
    """The newest sweep of the study (``name@profile`` with a profile) and its children; or, for a
    study only ever run with ``nnlab run``, its single runs."""
    name = spec.name
    if name not in reader.experiments():
        raise _no_runs(name, reader)
    parents = reader.search(name, {"nnlab.phase": "sweep"})
    if profile is not None and not parents.empty:
        parents = parents[parents["sweep_id"] == f"{name}@{profile}"]
        if parents.empty:
            raise _no_runs(name, reader, f" for profile {profile!r} (no sweep {name}@{profile})")
    if not parents.empty:
        parents = parents.sort_values("start_time", ascending=False)
        newest = parents.iloc[0]
        pid = str(newest["run_id"])
        runs = reader.search(name, {"mlflow.parentRunId": pid})
        if runs.empty:
            raise _no_runs(name, reader, f" under its newest sweep {newest['sweep_id']} (parent run {pid})")
        return StudyRuns(name=name, spec=spec, runs=_with_cells(runs, spec), tracking_uri=reader.uri,
                         sweep_id=str(newest["sweep_id"] or name), parent_run_id=pid,
                         sweeps_found=[str(s) for s in parents["run_id"]])
    runs = reader.search(name, {"nnlab.phase": "run"})
    if runs.empty:
        raise _no_runs(name, reader, " (neither a sweep nor single runs)")
    return StudyRuns(name=name, spec=spec, runs=_with_cells(runs, spec), tracking_uri=reader.uri)


def sweep_profile(sweep_id: str | None) -> str | None:
    if sweep_id and "@" in sweep_id:
        return sweep_id.split("@", 1)[1]
    return None


def _hashable(value: Any) -> Any:
    """A value as a dict key that matches the way ``same_value`` compares (1 == 1.0, True != 1)."""
    value = py(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ("none",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", float(f"{float(value):.12g}"))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_hashable(v) for v in value))
    return ("str", str(value))


def grid_cells(spec: Any) -> list[Any]:
    """The spec's cells (id, factors, values), linked factors (keys without a dot) included."""
    from nnlab.spec import expand

    return list(expand(dict(spec.sweep.grid)))


def _with_cells(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    """Give every run its grid factors and order the runs by the grid.

    A linked grid factor (a key without a dot, e.g. ``variant``) sets several spec keys at once; a
    run's value of it is the label of the option whose keys its params match, stored as
    ``param:<key>``. ``cell`` is filled from the factors where the tag is missing (single runs).
    Runs are ordered by each grid key's values in the spec's order, then by start time.
    """
    runs = runs.copy()
    cells = grid_cells(spec)
    dotted = sorted({k for c in cells for k in c.values})
    linked = [k for k in spec.sweep.grid if "." not in k]
    if cells and (linked or runs["cell"].isna().any()):
        index = {tuple(_hashable(c.values.get(k)) for k in dotted): c for c in cells}
        present = [k for k in dotted if PARAM + k in runs.columns]
        found = []
        for row in runs[[PARAM + k for k in present]].itertuples(index=False):
            values = dict(zip(present, row, strict=True))
            found.append(index.get(tuple(_hashable(values.get(k)) for k in dotted)))
        for key in linked:
            runs[PARAM + key] = [c.factors.get(key) if c is not None else None for c in found]
        missing = runs["cell"].isna().to_numpy()
        if missing.any():
            runs.loc[missing, "cell"] = [c.id if c is not None else "other" for c, m in zip(found, missing,
                                                                                            strict=True) if m]
    order_cols = []
    for i, key in enumerate(spec.sweep.grid):
        col = PARAM + key
        if col not in runs.columns:
            continue
        ranks = {_hashable(v): j for j, v in enumerate(grid_values(spec, key))}
        runs[f"_o{i}"] = [ranks.get(_hashable(v), len(ranks)) for v in runs[col]]
        order_cols.append(f"_o{i}")
    runs = runs.sort_values([*order_cols, "start_time", "run_id"], kind="stable", na_position="last")
    return runs.drop(columns=order_cols).reset_index(drop=True)


def grid_values(spec: Any, key: str) -> list[Any]:
    """A grid key's values as runs and claims name them: the labels of a linked factor's options."""
    values = list(spec.sweep.grid.get(key, []))
    if "." in key:
        return values
    from nnlab.spec._cells import linked_label

    return [linked_label(v) if isinstance(v, dict) else v for v in values]
