"""Sweeps: grid cells x tuned trials x confirm seeds, run by worker processes into MLflow and Optuna.

Importing this package is free (``nnlab --help`` imports ``nnlab.sweep.commands``): the names below
load their modules on first use. The CLI commands live in ``nnlab.sweep.commands``.

Layout: ``_cells`` (grid -> cells), ``_space`` (tune -> Optuna distributions), ``_samplers`` and
``_pruners`` (registries), ``_plan`` (counts, study names, structural hash, time estimate),
``_storage`` (the Optuna storage), ``_slots`` (exactly-once bookkeeping on trials, ask and tell), ``_ledger``
(studies, parent run, progress), ``_worker`` (runs slots), ``_coordinator`` (starts and watches
workers), ``_progress`` (display).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Cell": "nnlab.sweep._cells", "cell_id": "nnlab.sweep._cells", "make_cells": "nnlab.sweep._cells",
    "Plan": "nnlab.sweep._plan", "build_plan": "nnlab.sweep._plan", "sweep_identity": "nnlab.sweep._plan",
    "PRUNERS": "nnlab.sweep._pruners", "SAMPLERS": "nnlab.sweep._samplers",
    "SweepOptions": "nnlab.sweep._coordinator", "run_sweep": "nnlab.sweep._coordinator",
    "WorkerJob": "nnlab.sweep._worker", "run_worker": "nnlab.sweep._worker",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nnlab.sweep' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
