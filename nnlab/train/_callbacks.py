"""Keras callbacks, one concern each: divergence, diagnostics, training-set evaluation, tracking, progress
(``nnlab run``'s bar or lines, a sweep worker's status file), epoch hooks."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

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
    ``act_XX`` is its activation output. One forward pass gives both: a probe model returns the
    activations and the output, whose loss the tape differentiates. Given ``kept_probes`` (a function
    returning the dict a sweep worker's ``ModelCache`` keeps beside the model, dropped with it; asked at
    the first epoch's end, once the model is kept) the probe is a ``tf.function`` traced once per kept
    model: eagerly it cost ~0.1 s an epoch on a 32-layer MLP, more than its epoch.
    Otherwise it runs eagerly: for one run of a few epochs the trace would cost more than it saves.
    Under a mixed precision policy the probe computes in float32 on the same (float32) weights: a
    float16 backward pass flushes gradients below ~6e-8 to zero, which would make "the first layer's
    gradient is below 1e-6" hold for the number format, not the network.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, loss: Any, activation: str, *,
                 kept_probes: Callable[[], dict[str, Any] | None] | None = None) -> None:
        super().__init__()
        self.x = x
        self.y = y
        self.loss_fn = loss
        self.activation = activation
        self.kept_probes = kept_probes
        self.latest: dict[str, float] = {}
        self._eager: _Probe | None = None

    def _probe(self) -> _Probe:
        kept = self.kept_probes() if self.kept_probes is not None else None
        if kept is None:
            if self._eager is None:
                self._eager = _Probe(self.model, self.activation, self.loss_fn, traced=False)
            return self._eager
        found = kept.get(self.activation)
        if found is None:
            found = kept[self.activation] = _Probe(self.model, self.activation, self.loss_fn, traced=True)
        return found

    def compute(self) -> dict[str, float]:
        probe = self._probe()
        with computing_in_float32(probe.model):  # the trace (once) sees float32 layers
            grads, acts = probe.fn(self.x, self.y)
        out: dict[str, float] = {}
        for name, g in zip(probe.names, grads, strict=True):
            out[f"grad_norm/{name}"] = float(g)
        if probe.act_names:
            fractions = []
            for name, a in zip(probe.act_names, acts, strict=True):
                frac = self._unit_fraction(np.asarray(a).reshape(len(self.x), -1))
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


class _Probe:
    """A model's diagnostic probe: its block kernels and activation layers, and the function (traced or
    eager) that gives the kernels' gradient norms and the activations for a batch."""

    def __init__(self, model: Any, activation: str, loss: Any, *, traced: bool) -> None:
        import tensorflow as tf

        hidden = sorted((layer for layer in model.layers if layer.name.startswith("hidden_")
                         and layer.trainable_weights), key=lambda layer: layer.name)
        self.names = [layer.name for layer in hidden]
        kernels = [layer.trainable_weights[0] for layer in hidden]
        acts = sorted((layer for layer in model.layers if layer.name.startswith("act_")),
                      key=lambda layer: layer.name)
        if activation not in ("relu", "sigmoid", "tanh"):
            acts = []
        self.act_names = [layer.name for layer in acts]
        n_acts = len(acts)
        self.model = k.Model(model.inputs, [*(layer.output for layer in acts), *model.outputs]) if acts else model

        def probe(x: Any, y: Any) -> tuple[list[Any], list[Any]]:
            with tf.GradientTape() as tape:
                outs = self.model(x, training=False)
                outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
                value = loss(y, outs[n_acts])
            grads = tape.gradient(value, [kr.value for kr in kernels])
            norms = [tf.norm(g) if g is not None else tf.constant(0.0) for g in grads]
            return norms, outs[:n_acts]

        self.fn = tf.function(probe, reduce_retracing=True) if traced else probe


def _layers(model: Any) -> Iterator[Any]:
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _layers(layer)


@contextlib.contextmanager
def computing_in_float32(model: Any) -> Iterator[None]:
    """Every layer of ``model`` (nested ones too) computing in float32 for the duration, its own dtype
    policy put back afterwards. nnlab keeps weights in float32 under every policy, so this evaluates
    the very same weights at full precision. Nothing traces meanwhile: callers run it eagerly."""
    low = [(layer, layer.dtype_policy) for layer in _layers(model) if layer.compute_dtype != "float32"]
    try:
        for layer, _ in low:
            layer.dtype_policy = "float32"
        yield
    finally:
        for layer, policy in low:
            layer.dtype_policy = policy


class OnTrainBegin(Callback):
    """Calls ``fn(model)`` once training begins (the model compiled: its resolved settings known)."""

    def __init__(self, fn: Callable[[Any], None]) -> None:
        super().__init__()
        self.fn = fn

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.fn(self.model)


class TrainEval(Callback):
    """The loss and metrics of a fixed subset of the training split, in inference mode, at each epoch end,
    as ``train_eval_<metric>``.

    Keras's own ``loss`` and ``accuracy`` are running averages over the epoch's batches in training mode
    (dropout active, the weights changing under them), so ``val_loss - loss`` mixes the generalization
    gap with dropout and lag. This evaluates the end-of-epoch model the way validation does: the same
    traced test function, on a dataset built once per run (``data``, batched like the validation set);
    per epoch it costs what validation costs (see docs/performance.md). Its loss, like ``val_loss``,
    includes the regularization penalties (Keras's evaluate adds ``model.losses``); the gap cancels them.
    """

    PREFIX = "train_eval_"

    def __init__(self, data: Any) -> None:
        super().__init__()
        self.data = data
        self.latest: dict[str, float] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = self.model.evaluate(self.data, verbose=0, return_dict=True)
        self.latest = {f"{self.PREFIX}{key}": float(v) for key, v in values.items() if np.ndim(v) == 0}


class EpochValues(Protocol):
    """A callback that measures something at each epoch end and keeps it in ``latest`` for the Recorder."""

    latest: dict[str, float]


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
    """Keeps the epoch history and hands each epoch's metrics to ``sink`` in one call.

    ``extras`` run before it in the callback list (Keras calls callbacks in order); their ``latest``
    values join Keras's logs. ``rows[i]`` is epoch i's metrics, ``history[key]`` one key's series."""

    def __init__(self, sink: Callable[[dict[str, float], int], None] | None,
                 extras: list[EpochValues]) -> None:
        super().__init__()
        self.sink = sink
        self.extras = extras
        self.history: dict[str, list[float]] = {}
        self.rows: list[dict[str, float]] = []
        self.last: dict[str, float] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = {key: float(v) for key, v in (logs or {}).items() if np.ndim(v) == 0}
        for extra in self.extras:
            metrics.update(extra.latest)
        for key, v in metrics.items():
            self.history.setdefault(key, []).append(v)
        self.rows.append(metrics)
        self.last = metrics
        if self.sink is not None:
            self.sink(metrics, epoch)


PROGRESS_KEYS = ("loss", "val_loss", "val_accuracy", "val_mae")


def epoch_summary(logs: dict[str, Any] | None) -> str:
    """The few metrics a progress line shows, e.g. ``loss 0.412  val_loss 0.5  val_accuracy 0.91``."""
    logs = logs or {}
    return "  ".join(f"{key} {float(logs[key]):.4g}" for key in PROGRESS_KEYS if key in logs)


class Progress(Callback):
    """The epochs of ``nnlab run``: on a terminal a live bar (epochs done, elapsed, time left, the latest
    metrics); elsewhere (logs, pipes) one plain line per epoch."""

    def __init__(self, epochs: int, label: str, console: Any = None) -> None:
        super().__init__()
        from rich.console import Console

        self.epochs = epochs
        self.label = label
        self.console = console or Console(highlight=False)
        self.live = self.console.is_terminal
        self._bar: Any = None
        self._started = 0.0
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("epochs"), TimeElapsedColumn(), TextColumn("eta"),
                                     TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=self.console,
                                     transient=True)
            self._task = self._bar.add_task(label, total=epochs, info="")

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        import time

        self._started = time.monotonic()
        if self._bar is not None:
            self._bar.start()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        import time

        info = epoch_summary(logs)
        if self._bar is not None:
            self._bar.update(self._task, advance=1, info=info)
            return
        width = len(str(self.epochs))
        self.console.print(f"epoch {epoch + 1:>{width}}/{self.epochs}  {info}  "
                           f"({time.monotonic() - self._started:.1f} s)", markup=False, highlight=False)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None:
            self._bar.stop()


class WorkerStatus(Callback):
    """What a sweep worker is training, for the sweep's live display: a small JSON file (``about`` - cell,
    phase, slot -, the epochs done and planned, when the run's training started), rewritten when training
    starts and after every epoch. Written aside and renamed, so a reader never sees half of it."""

    def __init__(self, path: str, about: dict[str, Any], epochs: int) -> None:
        super().__init__()
        self.path = path
        self.about = about
        self.epochs = epochs
        self._started = 0.0

    def _write(self, done: int) -> None:
        import json
        import os
        import time

        record = {**self.about, "epoch": done, "epochs": self.epochs, "started": self._started,
                  "updated": time.time(), "pid": os.getpid()}
        scratch = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(scratch, "w", encoding="utf-8") as out:
                json.dump(record, out)
            os.replace(scratch, self.path)
        except OSError:  # only a display: a run never fails over it
            pass

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        import time

        self._started = time.time()
        self._write(0)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._write(epoch + 1)
