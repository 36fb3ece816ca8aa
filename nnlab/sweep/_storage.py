"""The Optuna storage of a sweep.

* Embedded (default): ``<store>/optuna.journal`` next to ``mlflow.db`` — Optuna's journal file
  storage, an append-only log guarded by an exclusive lock file. Every write is one short locked
  append and readers never lock, so any number of local worker processes share it without
  "database is locked" (which SQLite gives under concurrent writers). It has no heartbeats:
  a local worker that dies is found by its process id instead (``_slots.reconcile``).
* ``--storage postgresql://...`` (or mysql): Optuna's RDB storage, shared by machines. Trials
  send a heartbeat every ``HEARTBEAT_S`` seconds; a trial silent for the grace period is failed
  (``optuna.storages.fail_stale_trials``) and its slot queued again. Every
  operation of the sweep on it (a claim, a report, a tell, a progress read) rides out a lost
  connection (a database restart, a network blip): SQLAlchemy's ``pool_pre_ping`` replaces dead
  pooled connections, and the whole operation is repeated with exponential backoff for up to
  ``RETRY_FOR_S`` seconds, announced once per outage (``SweepStorage.retry``); past that the command
  stops with ``StoreFailed``. The grace period is that window plus two heartbeats (160 s by
  default), so an outage that was ridden out never makes a live worker's trial look dead.
* ``--storage sqlite:///path``: RDB storage on SQLite with a 60 s busy timeout.
* ``--storage PATH.journal``: a journal file elsewhere.
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nnlab.errors import FatalError, SpecError, StoreFailed, exception_chain
from nnlab.tracking import Store

JOURNAL_NAME = "optuna.journal"
HEARTBEAT_S = 20
GRACE_S = 60  # at least; with retries, the retry window + 2 heartbeats (see open_storage)
SQLITE_BUSY_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10
SCHEMA_RACE_RETRIES = 3
RETRY_FOR_S = 120.0  # how long an outage of a shared database is ridden out ($NNLAB_STORAGE_RETRY_S)
RETRY_FIRST_S = 0.5  # the first wait; each next one doubles, up to RETRY_MAX_S (with jitter)
RETRY_MAX_S = 15.0
# libpq keepalives: a connection whose server vanished without closing it fails in about a minute,
# not after the kernel's TCP timeout (~15 min)
PG_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
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
    reconnecting: Reconnecting | None = None  # shared databases: whole operations retried through outages

    @property
    def shown(self) -> str:
        return self.target.shown

    def retry(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, repeated from the start while the database is briefly out of reach."""
        if self.reconnecting is None:
            return fn(*args, **kwargs)
        return self.reconnecting.call(fn, *args, **kwargs)


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


def open_storage(target: StorageTarget, *, patient: bool = False) -> SweepStorage:
    """Connect (creating the journal file or the RDB schema when new). FatalError when unusable.

    A shared database storage retries its calls through lost connections (``Reconnecting``);
    ``patient`` (workers, started after the coordinator reached the database) also waits out an
    outage while connecting, where a coordinator fails at once.
    """
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
        libpq = "+psycopg" in target.location.split("://", 1)[0]  # psycopg2 and psycopg take libpq options
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **(PG_KEEPALIVES if libpq else {})}
    reconnecting = Reconnecting(target.shown) if target.shared else None
    grace = GRACE_S
    if reconnecting is not None:
        # a worker that rode out an outage has written no heartbeat meanwhile: it must not look dead
        grace = max(GRACE_S, math.ceil(reconnecting.retry_for) + 2 * HEARTBEAT_S)

    def connect() -> Any:
        return optuna.storages.RDBStorage(target.location, engine_kwargs=engine_kwargs,
                                          heartbeat_interval=HEARTBEAT_S, grace_period=grace)

    for attempt in range(SCHEMA_RACE_RETRIES + 1):
        try:
            storage = reconnecting.call(connect) if reconnecting is not None and patient else connect()
            return SweepStorage(target, storage, reconnecting)
        except StoreFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here means the storage is unusable
            # several machines starting on a new database create its tables at once: the losers retry
            racing = any(word in str(exc) for word in ("already exists", "duplicate key", "UniqueViolation"))
            if not racing or attempt == SCHEMA_RACE_RETRIES:
                raise FatalError(f"Optuna storage {target.shown} is not reachable: {_reason(exc)}") from None
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------------
# riding out a lost database


def lost_connection(exc: BaseException) -> BaseException | None:
    """The lost or refused connection in ``exc``'s chain, else None: SQLAlchemy's OperationalError,
    InterfaceError or DisconnectionError, or a driver's (psycopg2, psycopg, MySQL) OperationalError or
    InterfaceError; the driver's when there is one, as its first line says what happened. (A driver's
    OperationalError also covers a server shutting down, a deadlock and the like: all worth a retry.)
    Optuna wraps them in a StorageInternalError that blames invalid data, so the whole chain is searched."""
    found = None
    for current in exception_chain(exc):
        if isinstance(current, StoreFailed):
            return None
        for cls in type(current).__mro__:
            package = cls.__module__.split(".")[0]
            if cls.__name__ in ("OperationalError", "InterfaceError", "DisconnectionError") and package in (
                    "sqlalchemy", *_DRIVERS):
                if package in _DRIVERS:
                    return current
                found = found or current
                break
    return found


_DRIVERS = ("psycopg2", "psycopg", "pymysql", "MySQLdb")


class Reconnecting:
    """Retries calls to one database storage through an outage, shared by the threads of a process.

    A call failing on a lost connection is repeated after 0.5, 1, 2, 4, ... s (doubling up to
    ``RETRY_MAX_S``, with jitter so that many workers do not reconnect in step) until it succeeds
    or the outage — counted from its first failure in any thread — has lasted ``RETRY_FOR_S``;
    then ``StoreFailed``, and later calls fail at their first error until one succeeds again.
    The outage is announced once, when it starts, and its end once. Calls made from inside a
    retried call are not retried again on their own (the outer one repeats the whole call).
    """

    def __init__(self, shown: str, *, retry_for: float | None = None, first: float = RETRY_FIRST_S,
                 longest: float = RETRY_MAX_S, say: Callable[[str], None] | None = None) -> None:
        self.shown = shown
        self.retry_for = retry_for if retry_for is not None else retry_seconds()
        self.first = first
        self.longest = longest
        self.say = say or _say
        self.outages = 0  # outages seen by this process
        self.retries = 0  # repeated calls, over all outages
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._gave_up = False
        self._local = threading.local()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if getattr(self._local, "inside", False):
            return fn(*args, **kwargs)
        self._local.inside = True
        try:
            wait = self.first
            while True:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    lost = lost_connection(exc)
                    if lost is None:
                        raise
                    time.sleep(self._failed(lost, wait))
                    wait = min(wait * 2.0, self.longest)
                    continue
                self._succeeded()
                return result
        finally:
            self._local.inside = False

    def _failed(self, exc: BaseException, wait: float) -> float:
        """How long to wait before the next try; StoreFailed once the outage is too long."""
        now = time.monotonic()
        with self._lock:
            if self._down_since is None:
                self._down_since = now
                self.outages += 1
                self.say(f"warning: Optuna storage {self.shown}: connection lost ({_reason(exc)}); retrying with "
                         f"backoff for up to {self.retry_for:.0f} s")
            down = now - self._down_since
            if self._gave_up or down >= self.retry_for:
                self._gave_up = True
                raise StoreFailed(f"Optuna storage {self.shown} unreachable for {down:.0f} s ({_reason(exc)}); "
                                  "every finished run is kept: run the same command again to resume") from None
            self.retries += 1
            left = self.retry_for - down
        return min(wait * random.uniform(0.75, 1.25), left)

    def _succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            down, self._down_since, self._gave_up = time.monotonic() - self._down_since, None, False
            retries = self.retries
        self.say(f"Optuna storage {self.shown}: reconnected after {down:.1f} s ({retries} retries so far)")


def retry_seconds() -> float:
    """``$NNLAB_STORAGE_RETRY_S`` when set (seconds, > 0 and at most a day), else ``RETRY_FOR_S``."""
    text = os.environ.get("NNLAB_STORAGE_RETRY_S", "").strip()
    if not text:
        return RETRY_FOR_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise SpecError(f"must be a number of seconds > 0 and <= 86400, but got {text!r}", file="<environment>",
                        line=1, key="NNLAB_STORAGE_RETRY_S")
    return value


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _reason(exc: BaseException) -> str:
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = text[0] if text else type(exc).__name__
    if "(Background on this error" in reason:
        reason = reason.split("(Background on this error")[0].strip()
    return redact(reason)[:300]
