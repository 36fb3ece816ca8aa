"""Tracking: the embedded store (SQLite + artifacts under NNLAB_STORE) or an MLflow server."""

from typing import Any

from nnlab.tracking._store import Store, resolve_store


def start_tracker(store: Store) -> Any:
    """The tracker of one command, MLflow importing in a helper process (see ``_remote``)."""
    from nnlab.tracking._remote import start_tracker as start

    return start(store)


__all__ = ["Store", "resolve_store", "start_tracker"]
