"""Where runs go.

The embedded store is a folder (``NNLAB_STORE``, default ``./.nnlab``) holding
``mlflow.db`` (SQLite), ``artifacts/`` and, for sweeps, the Optuna storage. A
``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` points at an MLflow server instead.
Nothing is created until a command that writes runs starts, so a bad spec leaves
no trace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from nnlab.errors import SpecError

DEFAULT_STORE = ".nnlab"


@dataclass(frozen=True)
class Store:
    root: Path  # the local folder: artifacts of the embedded store, Optuna storage, caches
    tracking_uri: str
    embedded: bool

    @property
    def artifact_root(self) -> Path:
        return self.root / "artifacts"

    @property
    def db_path(self) -> Path:
        return self.root / "mlflow.db"

    def ensure(self) -> None:
        """Create the folder (called by commands that write, after validation)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.embedded:
            self.artifact_root.mkdir(parents=True, exist_ok=True)


def _sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def resolve_store(tracking_uri: str | None = None, store: str | None = None) -> Store:
    """The store a command uses: an explicit URI, then $MLFLOW_TRACKING_URI, else the embedded one."""
    root = Path(store or os.environ.get("NNLAB_STORE") or DEFAULT_STORE).expanduser()
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return Store(root=root, tracking_uri=_sqlite_uri(root / "mlflow.db"), embedded=True)
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https", "databricks"):
        return Store(root=root, tracking_uri=uri, embedded=False)
    if scheme.startswith(("sqlite", "postgresql", "mysql", "mssql")):
        return Store(root=root, tracking_uri=uri, embedded=False)
    raise SpecError(f"must be an http(s):// MLflow server or a database URI (sqlite:///, postgresql://), "
                    f"but got {uri!r}", file="<command line>", line=1, key="--tracking-uri")
