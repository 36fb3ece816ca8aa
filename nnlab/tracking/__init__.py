"""Tracking: the embedded store (SQLite + artifacts under NNLAB_STORE) or an MLflow server."""

from nnlab.tracking._store import Store, resolve_store

__all__ = ["Store", "resolve_store"]
