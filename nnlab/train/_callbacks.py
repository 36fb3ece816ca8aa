"""Keras callbacks, one concern each: divergence, diagnostics, tracking, progress, epoch hooks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nnlab.train._env import keras

k = keras()
Callback: Any = k.callbacks.Callback  # a runtime base class (Keras is imported lazily)

DIVERGED_LOSS = 1e6  # a finite loss this large means the weights blew up


class Divergence(Callback):
    """Stops training at the first non-finite (or exploded) loss and remembers it."""

    def __init__(self) -> None:
        super().__init__()
        self.diverged = False
        self.at_epoch: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def _check(self, logs: dict[str, Any] | None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if not math.isfinite(loss) or loss > DIVERGED_LOSS:
            self.diverged = True
            self.at_epoch = self._epoch
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._check(logs)


class Diagnostics(Callback):
    """Per-layer gradient norms on a fixed batch, and dead or saturated units, at each epoch end.

    Layers follow the builders' naming contract: ``hidden_XX`` owns block XX's kernel,
    ``act_XX`` is its activation output.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, loss: Any, activation: str) -> None:
        super().__init__()
        self.x = x
        self.y = y
        self.loss_fn = loss
        self.activation = activation
        self.latest: dict[str, float] = {}
        self._grad_fn: Any = None
        self._probe: Any = None

    def _setup(self) -> None:
        import tensorflow as tf

        model = self.model
        hidden = sorted((layer for layer in model.layers if layer.name.startswith("hidden_")
                         and layer.trainable_weights), key=lambda layer: layer.name)
        self._names = [layer.name for layer in hidden]
        kernels = [layer.trainable_weights[0] for layer in hidden]
        loss_fn = self.loss_fn

        def grads(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                out = model(x, training=False)
                value = loss_fn(y, out)
            return [tf.norm(g) if g is not None else tf.constant(0.0)
                    for g in tape.gradient(value, [kr.value for kr in kernels])]

        self._grad_fn = grads
        acts = sorted((layer for layer in model.layers if layer.name.startswith("act_")),
                      key=lambda layer: layer.name)
        self._act_names = [layer.name for layer in acts]
        if acts and self.activation in ("relu", "sigmoid", "tanh"):
            self._probe = k.Model(model.inputs, [layer.output for layer in acts])

    def compute(self) -> dict[str, float]:
        if self._grad_fn is None:
            self._setup()
        out: dict[str, float] = {}
        norms = self._grad_fn(self.x, self.y)
        for name, norm in zip(self._names, norms, strict=True):
            out[f"grad_norm/{name}"] = float(norm)
        if self._probe is not None:
            outs = self._probe(self.x, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            fractions = []
            for name, a in zip(self._act_names, outs, strict=True):
                a = np.asarray(a).reshape(len(self.x), -1)
                frac = self._unit_fraction(a)
                fractions.append(frac)
                out[f"{self._stat_name}/{name}"] = frac
            out[self._stat_name] = float(np.mean(fractions))
        return out

    @property
    def _stat_name(self) -> str:
        return "dead_units" if self.activation == "relu" else "saturated_units"

    def _unit_fraction(self, a: np.ndarray) -> float:
        if self.activation == "relu":
            unit_dead = np.all(a <= 0.0, axis=0)
        elif self.activation == "sigmoid":
            unit_dead = np.mean((a < 0.02) | (a > 0.98), axis=0) >= 0.9
        else:  # tanh
            unit_dead = np.mean(np.abs(a) > 0.98, axis=0) >= 0.9
        return float(np.mean(unit_dead))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        try:
            self.latest = self.compute()
        except (ValueError, TypeError):  # a layout the probe cannot follow: diagnostics are best effort
            self.latest = {}


class EpochHook(Callback):
    """Calls ``hook(epoch, metrics)`` after each epoch; a true result stops the run as pruned."""

    def __init__(self, hook: Callable[[int, dict[str, float]], bool], metrics: Callable[[], dict[str, float]]):
        super().__init__()
        self.hook = hook
        self.metrics = metrics
        self.stopped = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.hook(epoch, self.metrics()):
            self.stopped = True
            self.model.stop_training = True


class Recorder(Callback):
    """Keeps the epoch history and hands each epoch's metrics to ``sink`` in one call."""

    def __init__(self, sink: Callable[[dict[str, float], int], None] | None,
                 extras: list[Diagnostics]) -> None:
        super().__init__()
        self.sink = sink
        self.extras = extras
        self.history: dict[str, list[float]] = {}
        self.last: dict[str, float] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = {key: float(v) for key, v in (logs or {}).items() if np.ndim(v) == 0}
        for extra in self.extras:
            metrics.update(extra.latest)
        for key, v in metrics.items():
            self.history.setdefault(key, []).append(v)
        self.last = metrics
        if self.sink is not None:
            self.sink(metrics, epoch)


class Progress(Callback):
    """An epoch progress bar on a terminal."""

    def __init__(self, epochs: int, label: str) -> None:
        super().__init__()
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                                 "{task.total}"), TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                 transient=True)
        self._task = self._bar.add_task(label, total=epochs, info="")

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._bar.start()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        info = "  ".join(f"{key} {float(v):.4g}" for key, v in (logs or {}).items()
                         if key in ("loss", "val_loss", "val_accuracy", "val_mae"))
        self._bar.update(self._task, advance=1, info=info)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._bar.stop()
