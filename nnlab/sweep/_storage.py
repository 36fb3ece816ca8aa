"""The Optuna storage of a sweep.

* Embedded (default): ``<store>/optuna.journal`` next to ``mlflow.db`` — Optuna's journal file
  storage, an append-only log guarded by an exclusive lock file. Every write is one short locked
  append and readers never lock, so any number of local worker processes share it without
  "database is locked" (which SQLite gives under concurrent writers). It has no heartbeats:
  a local worker that dies is found by its process id instead (``_slots.reconcile``).
* ``--storage postgresql://...`` (or mysql): Optuna's RDB storage, shared by machines. Trials
  send a heartbeat every ``HEARTBEAT_S`` seconds; a trial silent for ``GRACE_S`` is failed and a
  fresh copy re-queued by Optuna's ``RetryHeartbeatStaleTrialCallback``.
* ``--storage sqlite:///path``: RDB storage on SQLite with a 60 s busy timeout.
* ``--storage PATH.journal``: a journal file elsewhere.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nnlab.errors import FatalError, SpecError
from nnlab.tracking import Store

JOURNAL_NAME = "optuna.journal"
HEARTBEAT_S = 20
GRACE_S = 60
SQLITE_BUSY_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
SCHEMA_RACE_RETRIES = 3
RDB_SCHEMES = ("postgresql", "postgres", "mysql", "sqlite")


@dataclass(frozen=True)
class StorageTarget:
    """Where the Optuna storage is, before anything is opened."""

    kind: str  # "journal" or "rdb"
    location: str  # a file path (journal) or a database URL (rdb)
    embedded: bool

    @property
    def shown(self) -> str:
        return redact(self.location) if self.kind == "rdb" else self.location

    @property
    def shared(self) -> bool:
        """Usable from other machines."""
        return self.kind == "rdb" and not self.location.startswith("sqlite")

    @property
    def heartbeat(self) -> bool:
        return self.kind == "rdb"


@dataclass
class SweepStorage:
    target: StorageTarget
    storage: Any  # an optuna BaseStorage

    @property
    def shown(self) -> str:
        return self.target.shown


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def resolve_target(store: Store, url: str | None) -> StorageTarget:
    """Which storage a sweep uses; validates the form of ``--storage`` without connecting."""
    if not url:
        return StorageTarget("journal", str((store.root / JOURNAL_NAME).resolve()), embedded=True)
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme in RDB_SCHEMES:
        return StorageTarget("rdb", _with_driver(url), embedded=False)
    if not scheme and url.endswith(".journal"):
        return StorageTarget("journal", str(Path(url).expanduser().resolve()), embedded=False)
    raise SpecError(f"must be a database URL (postgresql://user@host/db, mysql://..., sqlite:///path) or a "
                    f"path ending in .journal, but got {redact(url)!r}", file="<command line>", line=1,
                    key="--storage")


def _with_driver(url: str) -> str:
    """``postgresql://`` with the installed driver: SQLAlchemy 2.1 defaults to psycopg (3), but
    psycopg2 may be the one installed (it is in nnlab's dependencies)."""
    head, rest = url.split("://", 1)
    if head in ("postgres", "postgresql"):
        import importlib.util

        for driver in ("psycopg", "psycopg2"):
            if importlib.util.find_spec(driver) is not None:
                return f"postgresql+{driver}://{rest}"
        return f"postgresql://{rest}"
    return url


def probe(target: StorageTarget) -> None:
    """Connect to a database storage and disconnect, writing nothing: FatalError with the URL and
    reason when it cannot be reached. Journal files need no probe."""
    if target.kind != "rdb":
        return
    import sqlalchemy

    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if target.location.startswith("postgresql") else {}
    try:
        engine = sqlalchemy.create_engine(target.location, connect_args=connect_args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure here means the storage is unusable
        raise FatalError(f"Optuna storage {target.shown} is not reachable: {_reason(exc)}") from None


def open_existing_journal(target: StorageTarget) -> SweepStorage | None:
    """The embedded journal when it already exists (opening it then writes nothing), else None."""
    if target.kind == "journal" and Path(target.location).is_file():
        return open_storage(target)
    return None


def open_storage(target: StorageTarget) -> SweepStorage:
    """Connect (creating the journal file or the RDB schema when new). FatalError when unusable."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    if target.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage

        path = Path(target.location)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
            return SweepStorage(target, JournalStorage(backend))
        except (OSError, ValueError) as exc:
            raise FatalError(f"Optuna storage {path} is not usable: {_reason(exc)}") from None
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if target.location.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    elif target.location.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    for attempt in range(SCHEMA_RACE_RETRIES + 1):
        try:
            storage = optuna.storages.RDBStorage(
                target.location, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S, heartbeat_stale_trial_callback=retry_callback())
            return SweepStorage(target, storage)
        except Exception as exc:  # noqa: BLE001 - any failure here means the storage is unusable
            # several machines starting on a new database create its tables at once: the losers retry
            racing = any(word in str(exc) for word in ("already exists", "duplicate key", "UniqueViolation"))
            if not racing or attempt == SCHEMA_RACE_RETRIES:
                raise FatalError(f"Optuna storage {target.shown} is not reachable: {_reason(exc)}") from None
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def retry_callback() -> Any:
    """Re-queue a trial that was failed because its worker died: a WAITING copy, same slot and params."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=None)


def _reason(exc: BaseException) -> str:
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = text[0] if text else type(exc).__name__
    if "(Background on this error" in reason:
        reason = reason.split("(Background on this error")[0].strip()
    return redact(reason)[:300]
