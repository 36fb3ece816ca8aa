"""Pruner registry: a name in ``sweep.pruner`` -> an Optuna pruner sized to the sweep.

``median`` (the default) prunes a trial only when both hold: it has gone more than ``patience(epochs)``
epochs without beating its own best val_loss (Optuna's ``PatientPruner``), and its best so far is worse than
the median of the completed trials at that epoch (``MedianPruner``). A trial that is behind but still
improving, as a low learning rate is early on, runs on. The median alone cut those: on the digits
depth x learning-rate search (20 trials x 15 epochs, 2 workers, TPE, rounds seeded 0-4) it trained
92-197 of 300 epochs but its best val_loss was 0.1284, 0.1464, 0.1096, 0.1250, 0.1230 against
0.1284, 0.1113, 0.1096, 0.1224, 0.1230 without pruning; with the patience it was 0.1284, 0.1118,
0.1096, 0.1224, 0.1230 in 239-272 epochs. ``percentile`` (25th) has no patience: the aggressive
choice, for long searches where epochs matter more than the last few thousandths.

Warm-up scales with the sweep: no pruning before ``min(2, trials // 2)`` trials have completed
(median, percentile), nor before epoch ``max(1, epochs // 7)``. Studies that tune 4 trials per cell
prune after 2. Steps are epochs completed (1-based), so resources for hyperband/successive halving
count epochs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from nnlab.registry import Registry

PrunerBuilder = Callable[[int, int], Any]
PRUNERS: Registry[PrunerBuilder] = Registry("pruner")


def warmup(trials: int, epochs: int) -> tuple[int, int]:
    """(startup trials, warm-up epochs) for the median and percentile pruners."""
    return min(2, trials // 2), max(1, epochs // 7)


def patience(epochs: int) -> int:
    """The median pruner may stop a trial once it has gone this many epochs plus one without a new best."""
    return max(1, epochs // 7)


@PRUNERS.register("none")
def _none(trials: int, epochs: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


@PRUNERS.register("median")
def _median(trials: int, epochs: int) -> Any:
    import optuna

    startup, warm = warmup(trials, epochs)
    median = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warm)
    with warnings.catch_warnings():  # "experimental" since Optuna 2.8, and unchanged since
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.PatientPruner(median, patience=patience(epochs))


@PRUNERS.register("percentile")
def _percentile(trials: int, epochs: int) -> Any:
    import optuna

    startup, warm = warmup(trials, epochs)
    return optuna.pruners.PercentilePruner(25.0, n_startup_trials=startup, n_warmup_steps=warm)


@PRUNERS.register("hyperband")
def _hyperband(trials: int, epochs: int) -> Any:
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=max(1, epochs // 9), max_resource=max(1, epochs),
                                          reduction_factor=3)


@PRUNERS.register("successive_halving")
def _successive_halving(trials: int, epochs: int) -> Any:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 9), reduction_factor=3)


def build_pruner(name: str, trials: int, epochs: int) -> Any:
    return PRUNERS.get(name)(trials, epochs)


def describe_pruner(name: str, trials: int, epochs: int) -> str:
    if name in ("median", "percentile"):
        startup, warm = warmup(trials, epochs)
        waits = f"; it stops only a trial {patience(epochs) + 1} epochs without a new best" if name == "median" else ""
        return f"{name} (after {startup} completed trials, from epoch {warm}{waits})"
    if name in ("hyperband", "successive_halving"):
        return f"{name} (from epoch {max(1, epochs // 9)}, reduction 3)"
    return name
