"""Optimizers and learning-rate schedules from ``train``: one registry each, whose names the spec's
``train.optimizer`` and ``train.schedule`` are checked against.

An optimizer entry takes ``(keras, rate, train, clip)``, ``rate`` being a float or a schedule and
``clip`` the gradient-clipping keyword arguments; its ``options`` name the ``train`` keys it reads
beyond the rate (a run's params leave them out for the other optimizers). A schedule entry takes
``(keras, base_rate, total_steps)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nnlab.registry import Registry

if TYPE_CHECKING:
    from nnlab.spec import TrainSpec

OptimizerFactory = Callable[[Any, Any, "TrainSpec", dict[str, float]], Any]
ScheduleFactory = Callable[[Any, float, int], Any]

OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")
SCHEDULES: Registry[ScheduleFactory] = Registry("schedule")


@OPTIMIZERS.register("sgd")
def _sgd(k: Any, rate: Any, train: TrainSpec, clip: dict[str, float]) -> Any:
    return k.optimizers.SGD(rate, **clip)


@OPTIMIZERS.register("momentum", options=("momentum",))
def _momentum(k: Any, rate: Any, train: TrainSpec, clip: dict[str, float]) -> Any:
    return k.optimizers.SGD(rate, momentum=train.momentum, **clip)


@OPTIMIZERS.register("adam")
def _adam(k: Any, rate: Any, train: TrainSpec, clip: dict[str, float]) -> Any:
    return k.optimizers.Adam(rate, **clip)


@OPTIMIZERS.register("adamw", options=("weight_decay",))
def _adamw(k: Any, rate: Any, train: TrainSpec, clip: dict[str, float]) -> Any:
    return k.optimizers.AdamW(rate, weight_decay=train.weight_decay, **clip)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(k: Any, rate: Any, train: TrainSpec, clip: dict[str, float]) -> Any:
    return k.optimizers.RMSprop(rate, momentum=0.0, **clip)


@OPTIMIZERS.register("nadam")
def _nadam(k: Any, rate: Any, train: TrainSpec, clip: dict[str, float]) -> Any:
    return k.optimizers.Nadam(rate, **clip)


@SCHEDULES.register("none")
def _constant(k: Any, base: float, total: int) -> Any:
    return base


@SCHEDULES.register("cosine")
def _cosine(k: Any, base: float, total: int) -> Any:
    return k.optimizers.schedules.CosineDecay(base, decay_steps=total)


@SCHEDULES.register("warmup_cosine")
def _warmup_cosine(k: Any, base: float, total: int) -> Any:
    warm = max(1, total // 20)
    return k.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warm, warmup_target=base, warmup_steps=warm)


@SCHEDULES.register("exponential")
def _exponential(k: Any, base: float, total: int) -> Any:
    return k.optimizers.schedules.ExponentialDecay(base, decay_steps=max(1, total // 10), decay_rate=0.7)


@SCHEDULES.register("step")
def _step(k: Any, base: float, total: int) -> Any:
    bounds = [int(total * 0.5), int(total * 0.75)]
    return k.optimizers.schedules.PiecewiseConstantDecay(bounds, [base, base * 0.1, base * 0.01])


def learning_rate(train: TrainSpec, steps_per_epoch: int, lr: float | None = None) -> Any:
    from nnlab.train._env import keras

    base = lr if lr is not None else train.learning_rate
    return SCHEDULES.get(train.schedule)(keras(), base, max(1, steps_per_epoch * train.epochs))


def build_optimizer(train: TrainSpec, steps_per_epoch: int, lr: float | None = None) -> Any:
    from nnlab.train._env import keras

    clip = {"clipnorm": train.clipnorm} if train.clipnorm else {}
    return OPTIMIZERS.get(train.optimizer)(keras(), learning_rate(train, steps_per_epoch, lr), train, clip)
