"""Optimizers and learning-rate schedules from ``train``."""

from __future__ import annotations

from typing import Any

from nnlab.spec import TrainSpec
from nnlab.train._env import keras


def learning_rate(train: TrainSpec, steps_per_epoch: int, lr: float | None = None) -> Any:
    k = keras()
    base = lr if lr is not None else train.learning_rate
    total = max(1, steps_per_epoch * train.epochs)
    if train.schedule == "none":
        return base
    if train.schedule == "cosine":
        return k.optimizers.schedules.CosineDecay(base, decay_steps=total)
    if train.schedule == "warmup_cosine":
        warm = max(1, total // 20)
        return k.optimizers.schedules.CosineDecay(0.0, decay_steps=total - warm, warmup_target=base,
                                                  warmup_steps=warm)
    if train.schedule == "exponential":
        return k.optimizers.schedules.ExponentialDecay(base, decay_steps=max(1, total // 10), decay_rate=0.7)
    if train.schedule == "step":
        bounds = [int(total * 0.5), int(total * 0.75)]
        return k.optimizers.schedules.PiecewiseConstantDecay(bounds, [base, base * 0.1, base * 0.01])
    raise AssertionError(f"unvalidated schedule {train.schedule!r}")  # the spec lists the names


def build_optimizer(train: TrainSpec, steps_per_epoch: int, lr: float | None = None) -> Any:
    k = keras()
    rate = learning_rate(train, steps_per_epoch, lr)
    clip = {"clipnorm": train.clipnorm} if train.clipnorm else {}
    name = train.optimizer
    if name == "sgd":
        return k.optimizers.SGD(rate, **clip)
    if name == "momentum":
        return k.optimizers.SGD(rate, momentum=train.momentum, **clip)
    if name == "adam":
        return k.optimizers.Adam(rate, **clip)
    if name == "adamw":
        return k.optimizers.AdamW(rate, weight_decay=train.weight_decay, **clip)
    if name == "rmsprop":
        return k.optimizers.RMSprop(rate, momentum=0.0, **clip)
    if name == "nadam":
        return k.optimizers.Nadam(rate, **clip)
    raise AssertionError(f"unvalidated optimizer {name!r}")
