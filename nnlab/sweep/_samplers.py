"""Sampler registry: a name in ``sweep.sampler`` -> an Optuna sampler.

Builders take the search space, the number of trials per cell and a seed. Samplers that keep
a shared sequence (qmc, grid) get one seed per cell so that every worker walks the same
sequence; the others get a seed per trial, so a trial's suggestion does not depend on which
worker happened to run it. ``unguided`` says how many of a cell's trials a sampler draws before
any result guides it (all of them for random, qmc and grid; the start-up trials of the others):
those a worker may take at once and train as a cohort, and each gets the values it would alone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from nnlab.errors import SpecError
from nnlab.registry import Registry
from nnlab.sweep._space import Dimension, grid_space

SamplerBuilder = Callable[[list[Dimension], int, int], Any]
SAMPLERS: Registry[SamplerBuilder] = Registry("sampler")


def _startup(trials: int) -> int:
    return max(2, min(10, trials // 3))


@SAMPLERS.register("tpe", seed_per="trial")
def _tpe(dims: list[Dimension], trials: int, seed: int) -> Any:
    import optuna

    # Optuna 5: multivariate TPE by default for one objective; constant_liar keeps parallel workers apart
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=_startup(trials), constant_liar=True)


@SAMPLERS.register("random", seed_per="trial", guided=False)
def _random(dims: list[Dimension], trials: int, seed: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("gp", seed_per="trial", needs="torch")
def _gp(dims: list[Dimension], trials: int, seed: int) -> Any:
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=_startup(trials), warn_independent_sampling=False)


@SAMPLERS.register("cmaes", seed_per="trial", needs="cmaes")
def _cmaes(dims: list[Dimension], trials: int, seed: int) -> Any:
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=_startup(trials),
                                        warn_independent_sampling=False)


@SAMPLERS.register("qmc", seed_per="cell", guided=False)
def _qmc(dims: list[Dimension], trials: int, seed: int) -> Any:
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_asynchronous_seeding=False,
                                          warn_independent_sampling=False)


@SAMPLERS.register("grid", seed_per="cell", guided=False)
def _grid(dims: list[Dimension], trials: int, seed: int) -> Any:
    import copy

    import optuna

    class _Grid(optuna.samplers.GridSampler):  # type: ignore[misc]
        """GridSampler for pre-queued slots: a slot queued without parameters gets a grid point like a
        fresh trial (Optuna leaves every queued trial alone), and study.stop() is never called (there
        is no optimize() loop to stop; the slots are counted up front)."""

        def before_trial(self, study: Any, trial: Any) -> None:
            attrs = trial.system_attrs
            if attrs.get("fixed_params") == {} and "grid_id" not in attrs:
                trial = copy.copy(trial)
                trial.system_attrs = {k: v for k, v in attrs.items() if k != "fixed_params"}
            super().before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return _Grid(grid_space(dims), seed=seed)


def check_sampler(name: str, dims: list[Dimension]) -> None:
    """Fail early (before anything is written) when a sampler cannot run here."""
    SAMPLERS.get(name)
    needs = SAMPLERS.meta(name).get("needs")
    if needs and importlib.util.find_spec(needs) is None:
        raise SpecError(f"sweep.sampler {name!r} needs the Python package {needs!r}, which is not installed "
                        f"(pip install {needs}); or choose one of: tpe, random, qmc, grid")
    if name == "grid" and dims:
        grid_space(dims)


def unguided(name: str, trials: int) -> int:
    """How many of a cell's ``trials`` the sampler draws before it uses any trial's result."""
    return trials if SAMPLERS.meta(name).get("guided") is False else min(trials, _startup(trials))


def build_sampler(name: str, dims: list[Dimension], trials: int, *, cell_seed: int, trial_number: int) -> Any:
    seed = cell_seed if SAMPLERS.meta(name).get("seed_per") == "cell" else _mix(cell_seed, trial_number)
    return SAMPLERS.get(name)(dims, trials, seed)


def _mix(a: int, b: int) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{a}:{b}".encode()).digest()[:4], "big") & 0x7FFFFFFF
