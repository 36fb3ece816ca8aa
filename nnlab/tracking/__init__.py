"""Tracking: the embedded store (SQLite + artifacts under NNLAB_STORE) or an MLflow server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from nnlab.tracking._store import Store, resolve_store


@runtime_checkable
class RunTracker(Protocol):
    """What a run writes through: the MLflow tracker in this process (``_mlflow.Tracker``) and the one
    whose MLflow lives in a helper process (``_remote.RemoteTracker``) both provide it, so the runner and
    the sweep's workers depend on this, not on either class."""

    def describe_experiment(self, name: str, text: str) -> None: ...

    def start_run(self, experiment: str, *, run_name: str, tags: dict[str, str],
                  parent_run_id: str | None = None) -> str: ...

    def log_params(self, run_id: str, params: dict[str, Any]) -> None: ...

    def log_inputs(self, run_id: str, inputs: list[dict[str, Any]]) -> None: ...

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int, *, heartbeat: bool = True) -> None: ...

    def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None: ...

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None: ...

    def log_text(self, run_id: str, text: str, name: str) -> None: ...

    def log_drawn(self, run_id: str, name: str, draw: Callable[..., Any], *args: Any) -> None: ...

    def end_run(self, run_id: str, status: str) -> None: ...


def start_tracker(store: Store) -> Any:
    """The tracker of one command, MLflow importing in a helper process (see ``_remote``)."""
    from nnlab.tracking._remote import start_tracker as start

    return start(store)


__all__ = ["RunTracker", "Store", "resolve_store", "start_tracker"]
