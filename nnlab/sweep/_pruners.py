"""Pruner registry: a name in ``sweep.pruner`` -> an Optuna pruner sized to the sweep.

Warm-up scales with the sweep: no pruning before ``min(2, trials // 2)`` trials have completed
(median, percentile), nor before epoch ``max(1, epochs // 7)``. Two completed references are
enough because the trials that run beside them in other workers finish unpruned as well: on the
digits depth x learning-rate search (20 trials x 15 epochs, 2 workers, TPE) with seeds 0-2, waiting
for 3 completed trials trained 144, 153 and 183 of 300 epochs and waiting for 2 trained 144, 97
and 145, finding the same best trial in every seed (``make bench``, goal 4). Studies that tune 4
trials per cell prune after 2 under either rule. Steps are epochs completed (1-based), so
resources for hyperband/successive halving count epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nnlab.registry import Registry

PrunerBuilder = Callable[[int, int], Any]
PRUNERS: Registry[PrunerBuilder] = Registry("pruner")


def warmup(trials: int, epochs: int) -> tuple[int, int]:
    """(startup trials, warm-up epochs) for the median and percentile pruners."""
    return min(2, trials // 2), max(1, epochs // 7)


@PRUNERS.register("none")
def _none(trials: int, epochs: int) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


@PRUNERS.register("median")
def _median(trials: int, epochs: int) -> Any:
    import optuna

    startup, warm = warmup(trials, epochs)
    return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warm)


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
        return f"{name} (after {startup} completed trials, from epoch {warm})"
    if name in ("hyperband", "successive_halving"):
        return f"{name} (from epoch {max(1, epochs // 9)}, reduction 3)"
    return name
