"""A new embedded store starts as a copy of an empty, fully migrated MLflow database.

MLflow builds a new SQLite store by running every schema migration it ships, one after another:
seconds of work that each fresh store (every new ``NNLAB_STORE``, every test, every benchmark
round) pays before its first run. The result depends only on the MLflow version, so it is built
once per machine and version, kept in the cache folder (``$NNLAB_CACHE``, else
``$XDG_CACHE_HOME/nnlab``, else ``~/.cache/nnlab``), and copied: the copy is written under a
temporary name beside the store's database and linked into place, so a concurrent process either
finds no database or a complete one. The default experiment's artifact location is pointed into
the new store. Anything that goes wrong here (a read-only cache, an odd file system) falls back to
MLflow creating the database itself.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from nnlab.tracking._store import Store


def cache_dir() -> Path:
    explicit = os.environ.get("NNLAB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nnlab"


def template_path() -> Path:
    import mlflow

    return cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"


def ensure_template() -> Path | None:
    """The migrated empty database of this MLflow version, built now if missing; None if it cannot be."""
    try:
        path = template_path()
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(prefix=".building-", suffix=".db", dir=path.parent)
        os.close(fd)
        os.unlink(scratch)  # MLflow must find no file, or it takes it for an existing database
        try:
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = SqlAlchemyStore(f"sqlite:///{scratch}", path.parent.as_uri())
            store.engine.dispose()
            os.replace(scratch, path)  # atomic: a concurrent builder's copy is as good as ours
        finally:
            if os.path.exists(scratch):
                os.unlink(scratch)
        return path
    except Exception:  # noqa: BLE001 - only a shortcut: MLflow builds the database itself
        return None


def seed_store(store: Store) -> bool:
    """Give a new embedded store its database from the template; False where it was not done (the
    database exists already, or there is no template)."""
    if not store.embedded or store.db_path.exists():
        return False
    template = ensure_template()
    if template is None:
        return False
    store.root.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=".mlflow-", suffix=".db", dir=store.root)
    os.close(fd)
    try:
        shutil.copyfile(template, scratch)
        with sqlite3.connect(scratch) as db:
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                       ((store.artifact_root.resolve() / "0").as_uri(),))
        db.close()
        os.link(scratch, store.db_path)  # fails if another process got there first: theirs stays
        return True
    except OSError:
        return False
    finally:
        os.unlink(scratch)
