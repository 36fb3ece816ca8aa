"""One run: prepare (data + model, nothing written), then execute (fit, evaluate, track).

Bad input surfaces in ``prepare`` as ``SpecError`` before any store is touched;
anything that goes wrong during ``execute`` is recorded on the run.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nnlab.data import Dataset, load_dataset
from nnlab.errors import SpecError, TrialFailed
from nnlab.spec import Spec
from nnlab.tracking import RunTracker
from nnlab.tracking._tags import SOURCE_NAME
from nnlab.train._reuse import ModelCache

TAG = "nnlab."
DIAGNOSTIC_BATCH = 256
# where a sweep worker's runs write their WorkerStatus file (set by the sweep's coordinator per worker)
WORKER_STATUS_ENV = "NNLAB_STATUS_FILE"


@dataclass
class Prepared:
    spec: Spec
    data: Dataset
    model: Any
    pretrain_data: Dataset | None = None
    cache: ModelCache | None = None  # where the model is kept for the next run of the same graph
    cache_key: str | None = None
    reused: bool = False  # the model is a kept one: compiled and traced already


@dataclass
class RunResult:
    """A run's outcome. ``metrics`` describe the kept model: the best epoch's when early stopping restored
    its weights (``best_epoch``, the index into each ``history`` series), else the last epoch's."""

    run_id: str | None
    status: str  # completed, diverged, pruned, failed, killed
    metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs: int = 0
    seconds: float = 0.0
    error: str | None = None
    best_epoch: int | None = None  # set when the weights of that epoch were restored


def best_epoch(val_losses: Sequence[float]) -> int | None:
    """The epoch Keras's ``EarlyStopping(restore_best_weights=True)`` restores: the first with the lowest
    finite ``val_loss`` (NaN is never an improvement; with no finite value it keeps the first epoch's
    weights). None without epochs."""
    finite = [(v, i) for i, v in enumerate(val_losses) if math.isfinite(v)]
    if finite:
        return min(finite)[1]
    return 0 if val_losses else None


def kept_epoch(spec: Spec, val_losses: Sequence[float]) -> int | None:
    """The epoch whose weights a run ends with when they are not simply the last epoch's: with
    ``train.early_stopping`` and ``train.restore_best`` Keras restores the best epoch's at the end of
    training, whether patience ran out, a pruner stopped it, or it ran every epoch. None: the last
    epoch's weights are kept (no early stopping, or ``restore_best: false``)."""
    if spec.train.early_stopping is None or not spec.train.restore_best:
        return None
    return best_epoch(val_losses)


def _loss_and_metrics(task: str) -> tuple[Any, list[Any]]:
    from nnlab.train._env import keras

    k = keras()
    if task == "classification":
        return k.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    return k.losses.MeanSquaredError(), ["mae", "mse"]


def _pretrain_cfg(spec: Spec) -> Any:
    pre = spec.train.pretrain
    assert pre is not None
    updates: dict[str, Any] = {"classes": pre.classes}
    if pre.dataset is not None:
        updates["dataset"] = pre.dataset
    if pre.train_size is not None:
        updates["train_size"] = pre.train_size
    return spec.data.model_copy(update=updates)


def prepare(spec: Spec, cache: ModelCache | None = None) -> Prepared:
    """Load the data and build the model. Raises SpecError for input the spec alone could not catch.

    With a ``cache`` (a sweep worker's), a model kept from an earlier run of the same graph is taken
    instead, its variables set to those of the model just built (see ``nnlab.train._reuse``)."""
    from nnlab.models import build_model
    from nnlab.train._env import configure_gpus, keras

    keras()  # TensorFlow configured before anything is built
    configure_gpus()
    try:
        data = load_dataset(spec.data)
        pretrain_data = load_dataset(_pretrain_cfg(spec)) if spec.train.pretrain is not None else None
        key = cache.key(spec, data) if cache is not None else None
        if cache is not None:
            cache.make_room(key)
        _seed_host(spec.train.seed)
        model = build_model(spec.model, data.info, augment=list(spec.data.augment), seed=spec.train.seed,
                            precision=spec.train.precision)
    except SpecError as exc:
        raise spec.locate(exc) from None
    kept = cache.take(key, model) if cache is not None else None
    # a model kept uncompiled (a cohort's template) serves too, compiled by this run's fit
    reused = kept is not None and cache is not None and cache.compiled(key)
    return Prepared(spec=spec, data=data, model=kept if kept is not None else model, pretrain_data=pretrain_data,
                    cache=cache, cache_key=key, reused=reused)


def _seed_host(seed: int) -> None:
    """Python's and NumPy's global generators seeded with the run's seed. Not TensorFlow's global seed: every
    random thing a run draws has its own seed (weights, dropout and augmentation from the model seed, the
    training order from the pipeline's generator), and ``tf.random.set_seed`` would clear TensorFlow's
    kernel cache, which a kept model's traced functions live in (see ``_pipelines``)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)


def _steps_per_execution(spec: Spec, steps_per_epoch: int) -> int:
    if spec.train.steps_per_execution != "auto":
        return int(spec.train.steps_per_execution)
    return max(1, min(steps_per_epoch, 32))


def _train_eval_set(data: Dataset, batch: int) -> Any:
    """The training examples that ``train_eval_*`` measure: the first ``len(x_val)`` of the training split
    (at most as many as validation has, so the evaluation costs at most what validation costs), batched
    like validation: one pipeline per run, read again every epoch (``.cache()`` measured no faster on the
    bench job, and would hold a second copy of the examples). The training split is a prefix of a
    shuffled (for classification, class-interleaved) pool, so its head is a random sample. None when
    there is no validation split to compare with."""
    import tensorflow as tf

    n = min(len(data.x_train), len(data.x_val))
    if n == 0:
        return None
    return tf.data.Dataset.from_tensor_slices((data.x_train[:n], data.y_train[:n])).batch(batch)


def _pipelines(data: Dataset, batch: int, seed: int) -> tuple[Any, Any]:
    """The training and validation sets as plain tf.data pipelines.

    Training: a fresh permutation of the example indices every epoch, batched, then gathered from the
    arrays; validation: the arrays in order, batched. Keras's own pipeline for NumPy arrays costs
    ~10 ms per iterator, and it makes new ones every epoch: for a small model that was up to half
    the training time. Same batches per epoch, same per-epoch reshuffle, same validation metrics.

    The permutations come from a generator seeded with ``seed`` alone, one draw per epoch (Keras starts
    a new iteration of the dataset each epoch), not from ``Dataset.shuffle``, whose order also depends
    on TensorFlow's global seed: setting that per run (``tf.random.set_seed``) clears TensorFlow's
    kernel cache, and a model kept between runs (``nnlab.train._reuse``) then paid seconds to
    instantiate its traced functions again.
    """
    import tensorflow as tf

    n = len(data.x_train)
    x, y = tf.constant(data.x_train), tf.constant(data.y_train)
    draws = order_draws(seed)
    train = (tf.data.Dataset.from_tensors(0).map(lambda _: epoch_order(draws, n)).unbatch().batch(batch)
             .map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx))))
    val = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(batch)
    return train, val


def order_draws(seed: int) -> Any:
    """The generator a run's training orders come from: seeded with ``train.seed`` alone."""
    import tensorflow as tf

    return tf.random.Generator.from_seed(seed)


def epoch_order(draws: Any, n: int) -> Any:
    """The next epoch's order of the ``n`` training examples: one draw from ``draws`` per epoch."""
    import tensorflow as tf

    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=draws.make_seeds(1)[:, 0])


def _batch(spec: Spec, data: Dataset) -> int:
    return min(spec.train.batch_size, len(data.x_train))


def _fit(prepared: Prepared, model: Any, data: Dataset, epochs: int, lr: float | None,
         callbacks: list[Any], *, main: bool = True) -> None:
    """Compile (or, for a kept model, restart) and fit. ``main``: the run's own model, not pre-training's."""
    from nnlab.train._env import releasing_traced_gradients

    spec = prepared.spec
    n = len(data.x_train)
    batch = _batch(spec, data)
    steps = math.ceil(n / batch)
    if spec.train.deterministic:
        _enable_determinism()
    if main and prepared.reused:
        assert prepared.cache is not None
        prepared.cache.restart(model, spec)
    else:
        _compile(prepared, model, data, steps, lr, main=main)
    train, val = _pipelines(data, batch, spec.train.seed)
    with releasing_traced_gradients():  # else every fit of a new model leaks its traced graph (~5 MiB)
        model.fit(train, epochs=epochs, verbose=0, validation_data=val, callbacks=callbacks)


def _compile(prepared: Prepared, model: Any, data: Dataset, steps: int, lr: float | None, *,
             main: bool = True) -> None:
    """Compile ``model`` for the run, build its optimizer's and metrics' state, and (the run's own model in
    a sweep worker) keep it for the next run of the same graph."""
    from nnlab.train._env import keras
    from nnlab.train._optim import build_optimizer

    spec = prepared.spec
    loss, metrics = _loss_and_metrics(data.info.task)
    optimizer = build_optimizer(spec.train, steps, lr)
    if spec.train.precision == "mixed_float16":  # float16 gradients underflow unless the loss is scaled
        optimizer = keras().optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                  steps_per_execution=_steps_per_execution(spec, steps),
                  jit_compile=spec.train.jit_compile)  # auto: XLA on a GPU only (it did not pay on the CPU)
    _build_state(model, data)
    if main and prepared.cache is not None:
        prepared.cache.keep(prepared.cache_key, model)


def _build_state(model: Any, data: Dataset) -> None:
    """Create the optimizer's slots and the compiled loss's and metrics' state now, eagerly, instead of
    inside the first trace of the train function.

    Without a distribution strategy Keras defers building them to that trace, and a ``tf.function``
    whose first trace creates variables is traced a second time; each variable made inside a trace
    also costs tens of milliseconds. For a 32-block residual batch-norm MLP (260 Adam slots) that was
    ~9 s of slot creation plus a second ~17 s trace of the train step, before the first epoch. Built
    here, the train step is traced once. The values are what Keras would have made (zeros, counters
    at 0) and the metrics are reset, so a run's results do not change (see the runner's tests)."""
    model.optimizer.build(model.trainable_variables)
    x, y = data.x_train[:2], data.y_train[:2]
    y_pred = model(x, training=False)
    model.compute_loss(x=x, y=y, y_pred=y_pred)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()


def _transfer_weights(source: Any, target: Any, freeze: bool) -> int:
    """Copy every same-named, same-shaped layer except the head; optionally freeze them."""
    moved = 0
    by_name = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        src = by_name.get(layer.name)
        if src is None or layer.name == "head" or not src.weights:
            continue
        if [w.shape for w in src.weights] != [w.shape for w in layer.weights]:
            continue
        layer.set_weights(src.get_weights())
        if freeze:
            layer.trainable = False
        moved += 1
    return moved


def execute(prepared: Prepared, tracker: RunTracker | None, *, phase: str = "run", tags: dict[str, str] | None = None,
            parent_run_id: str | None = None, run_name: str | None = None,
            epoch_hook: Callable[[int, dict[str, float]], bool] | None = None,
            progress: bool = False, figures: bool = True, train_eval: bool = True,
            started_run: str | None = None) -> RunResult:
    """Fit, evaluate on the test split (and extra splits), and record everything on a new run.

    Each epoch also evaluates a fixed subset of the training split in inference mode (``train_eval_*``,
    see ``TrainEval``); ``train_eval=False`` leaves that out (and with it ``gap_*``), for measuring its cost
    only. Final metrics describe the kept model (see ``RunResult`` and ``_finish``). ``progress`` shows the
    epochs on stdout (a bar on a terminal, else a line each); with ``$NNLAB_STATUS_FILE`` set (a sweep
    worker) each epoch also goes to that file, for the sweep's display.
    """
    from nnlab.models import build_model
    from nnlab.train import _callbacks as cb
    from nnlab.train._env import keras

    k = keras()
    spec, data, model = prepared.spec, prepared.data, prepared.model
    run_id: str | None = None
    started = time.time()
    result = RunResult(run_id=None, status="failed")
    if tracker is not None:  # ``started_run``: its run, started already (a cohort's member that trains alone)
        run_id = started_run or start_run(tracker, spec, data, prepared.pretrain_data, phase=phase, tags=tags,
                                          parent_run_id=parent_run_id, run_name=run_name)
    result.run_id = run_id

    def sink(metrics: dict[str, float], epoch: int) -> None:
        if tracker is not None and run_id is not None:
            tracker.log_epoch(run_id, metrics, step=epoch)  # queued: written in the background

    result.metrics.update(_chance(data))  # before fitting: every way the run ends logs it
    loss_fn, _ = _loss_and_metrics(data.info.task)
    divergence = cb.Divergence()
    extras: list[Any] = []
    if spec.train.diagnostics:
        m = min(DIAGNOSTIC_BATCH, len(data.x_train))
        extras.append(cb.Diagnostics(data.x_train[:m], data.y_train[:m], loss_fn, spec.model.activation,
                                     kept_probes=_kept_probes(prepared)))
    subset = _train_eval_set(data, _batch(spec, data)) if train_eval else None
    if subset is not None:
        extras.append(cb.TrainEval(subset))
    recorder = cb.Recorder(sink, extras)
    callbacks: list[Any] = [divergence, *extras, recorder]
    hook = None
    if epoch_hook is not None:
        hook = cb.EpochHook(epoch_hook, lambda: recorder.last)
        callbacks.append(hook)
    if spec.train.early_stopping:
        callbacks.append(k.callbacks.EarlyStopping(monitor="val_loss", patience=spec.train.early_stopping,
                                                   restore_best_weights=spec.train.restore_best))
    if progress:
        callbacks.append(cb.Progress(spec.train.epochs, spec.name))
    if tracker is not None and run_id is not None:  # what train.jit_compile (auto: a GPU's) came to
        callbacks.append(cb.OnTrainBegin(lambda m: tracker.set_tags(run_id, {
            f"{TAG}jit_compile": str(bool(m.jit_compile)).lower(), f"{TAG}deterministic": _determinism()})))
    status_file = os.environ.get(WORKER_STATUS_ENV)
    if status_file:  # a sweep worker whose coordinator shows what each worker trains
        about = {"run": run_name or spec.name, "phase": phase, "cell": (tags or {}).get(f"{TAG}cell", ""),
                 "slot": (tags or {}).get(f"{TAG}slot", "")}
        callbacks.append(cb.WorkerStatus(status_file, about, spec.train.epochs))
    try:
        pre = spec.train.pretrain
        if pre is not None and pre.epochs > 0 and prepared.pretrain_data is not None:
            pre_model = build_model(spec.model, prepared.pretrain_data.info, augment=list(spec.data.augment),
                                    seed=spec.train.seed, precision=spec.train.precision)
            pre_rec = cb.Recorder(None, [])
            _fit(prepared, pre_model, prepared.pretrain_data, pre.epochs, pre.learning_rate, [pre_rec], main=False)
            moved = _transfer_weights(pre_model, model, pre.freeze)
            pre_metrics = {f"pretrain_{key}": v for key, v in pre_rec.last.items()}
            pre_metrics["pretrain_layers_transferred"] = float(moved)
            result.metrics.update(pre_metrics)
            if tracker is not None and run_id is not None:
                tracker.log_metrics(run_id, pre_metrics, step=0, heartbeat=True)
        _fit(prepared, model, data, spec.train.epochs, None, callbacks)
        result.history = recorder.history
        result.epochs = len(recorder.rows)
        if divergence.diverged:
            result.status = "diverged"  # its last epoch's values: they are why it ended
            result.metrics.update(recorder.last)
        else:
            result.status = "pruned" if hook is not None and hook.stopped else "completed"
            conclude(result, spec, recorder.rows, model, data)
        _summaries(result, model)
    except KeyboardInterrupt:
        result.status = "killed"
        _release(prepared)
        _finish(tracker, run_id, result, started, "KILLED")
        raise
    except Exception as exc:  # noqa: BLE001 - one run failing is recorded, not fatal
        result.status = "failed"
        _release(prepared)
        result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500] if str(exc) else type(exc).__name__
        if tracker is not None and run_id is not None:
            try:
                tracker.log_text(run_id, traceback.format_exc(), "error.txt")
            except Exception:  # noqa: BLE001 - the store may be the thing that failed
                pass
        _finish(tracker, run_id, result, started, "FAILED")
        raise TrialFailed(result.error) from exc
    if tracker is not None and run_id is not None:
        _artifacts(tracker, run_id, spec, model, result, figures)
    _finish(tracker, run_id, result, started, "FINISHED")
    return result


def start_run(tracker: RunTracker, spec: Spec, data: Dataset, pretrain_data: Dataset | None, *, phase: str,
              tags: dict[str, str] | None, parent_run_id: str | None, run_name: str | None) -> str:
    """A new MLflow run for ``spec``: its tags, params and datasets."""
    from nnlab.train._env import device_tags, keras

    tracker.describe_experiment(spec.name, spec.description)
    run_id = tracker.start_run(spec.name, run_name=run_name or spec.name, parent_run_id=parent_run_id, tags={
        f"{TAG}phase": phase,
        f"{TAG}status": "running",
        f"{TAG}spec_hash": spec.spec_hash(),
        f"{TAG}spec_name": spec.name,
        SOURCE_NAME: spec.source,
        f"{TAG}keras_version": keras().__version__,
        f"{TAG}tensorflow_version": _tf_version(),
        **device_tags(),
        **(tags or {}),
    })
    tracker.log_params(run_id, run_params(spec, data))
    tracker.log_inputs(run_id, _inputs(spec, data, pretrain_data))
    return run_id


def _chance(data: Dataset) -> dict[str, float]:
    """A classifier's chance accuracy (the level reports count a diverged or failed run at)."""
    if data.info.task == "classification" and data.info.n_classes:
        return {"chance_accuracy": 1.0 / data.info.n_classes}
    return {}


def conclude(result: RunResult, spec: Spec, rows: list[dict[str, float]], model: Any, data: Dataset,
             evaluated: dict[str, float] | None = None) -> None:
    """The final metrics of a run that ended well, ``model`` holding the weights it keeps (those Keras
    restored at the end of fit): the kept epoch's values as that epoch logged them, ``test_*`` (and extra
    splits) evaluated now, or ``evaluated`` already (a cohort's member, see ``nnlab.train._cohort``)."""
    result.best_epoch = kept_epoch(spec, result.history.get("val_loss", []))
    kept = result.best_epoch if result.best_epoch is not None else len(rows) - 1
    result.metrics.update(rows[kept] if rows else {})
    result.metrics.update(evaluated if evaluated is not None else _evaluate(model, data))


def _kept_probes(prepared: Prepared) -> Callable[[], dict[str, Any] | None] | None:
    """Where the diagnostics keep a traced probe: beside the run's model in the cache, once it is kept."""
    cache, key = prepared.cache, prepared.cache_key
    if cache is None or key is None:
        return None
    return lambda: cache.probes(key)


def _release(prepared: Prepared) -> None:
    """A run that broke off leaves no model to the next: what state it left is not known."""
    if prepared.cache is not None:
        prepared.cache.release()


_DETERMINISTIC: list[bool] = []  # set once op determinism is on in this process


def _enable_determinism() -> None:
    """TensorFlow's op determinism: process-wide, and TensorFlow offers no public way to turn it off, so a
    later run of the same worker keeps it (its ``nnlab.deterministic`` tag says so)."""
    import tensorflow as tf

    if not _DETERMINISTIC:
        tf.config.experimental.enable_op_determinism()
        _DETERMINISTIC.append(True)


def _determinism() -> str:
    return "true" if _DETERMINISTIC else "false"


def eval_splits(data: Dataset) -> dict[str, tuple[Any, Any]]:
    """The splits a run is evaluated on at its end: ``test`` and the dataset's extra ones."""
    return {"test": (data.x_test, data.y_test), **data.extra}


def _evaluate(model: Any, data: Dataset) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, (x, y) in eval_splits(data).items():
        values = model.evaluate(x, y, batch_size=1024, verbose=0, return_dict=True)
        out.update({f"{name}_{key}": float(v) for key, v in values.items()})
    return with_ratios(out, data)


def with_ratios(out: dict[str, float], data: Dataset) -> dict[str, float]:
    """``out`` (``<split>_<metric>``) and, per extra split, its mse and mae over the test split's."""
    for name in data.extra:  # how much worse the model is on an extra split than on the test split
        for metric in ("mse", "mae"):
            if out.get(f"test_{metric}", 0.0) > 0.0 and f"{name}_{metric}" in out:
                out[f"{name}_{metric}_ratio"] = out[f"{name}_{metric}"] / out[f"test_{metric}"]
    return out


def _summaries(result: RunResult, model: Any) -> None:
    result.metrics["n_params"] = float(model.count_params())
    result.metrics["epochs_trained"] = float(result.epochs)
    for key in ("val_loss", "val_accuracy"):
        values = result.history.get(key)
        if values:
            finite = [v for v in values if math.isfinite(v)]
            if finite:
                result.metrics[f"best_{key}"] = min(finite) if key == "val_loss" else max(finite)
    _gaps(result.metrics)


# (gap, minuend, subtrahend): positive = worse on validation than on the training examples
GAPS = (("gap_loss", "val_loss", "train_eval_loss"),
        ("gap_accuracy", "train_eval_accuracy", "val_accuracy"),
        ("gap_mae", "val_mae", "train_eval_mae"))


def _gaps(metrics: dict[str, float]) -> None:
    """The generalization gaps of the kept model: validation against the same model evaluated the same
    way (inference mode, end of the epoch) on training examples, not against Keras's running training-mode
    averages (``loss``, ``accuracy``), which dropout and a changing model bias. Both losses include the
    regularization penalties, which cancel in ``gap_loss``."""
    for gap, a, b in GAPS:
        if a in metrics and b in metrics:
            metrics[gap] = metrics[a] - metrics[b]


def _finish(tracker: RunTracker | None, run_id: str | None, result: RunResult, started: float, mlflow_status: str) -> None:
    """End the run in the tracker: its final metrics, status tags and MLflow status.

    The final metrics are logged at step ``result.epochs``, one past the last epoch's step. For a metric
    with a per-epoch history (``val_loss``, ``train_eval_*``, ``loss``, diagnostics) that adds one point
    after the epochs, the kept model's value: the best epoch's when early stopping restored its weights
    (tag ``nnlab.best_epoch``), else the last epoch's again. MLflow's latest value of every metric (what
    ``run.data.metrics`` and searches show) is therefore the kept model's: a restored run's ``val_loss``
    is the minimum of its history. A learning curve is the steps below ``epochs_trained``.
    """
    result.seconds = time.time() - started
    if tracker is None or run_id is None:
        return
    final = dict(result.metrics)
    final["train_seconds"] = result.seconds
    tags = {f"{TAG}status": result.status}
    if result.error:
        tags[f"{TAG}error"] = result.error
    if result.best_epoch is not None:
        tags[f"{TAG}best_epoch"] = str(result.best_epoch)
    try:
        # step = epochs: after every epoch's values, so that MLflow's latest is the kept model's
        tracker.log_metrics(run_id, {key: v for key, v in final.items() if _finite(v)},
                            step=result.epochs, heartbeat=False)
    finally:
        tracker.set_tags(run_id, tags)
        tracker.end_run(run_id, mlflow_status)


def _finite(v: float) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def _artifacts(tracker: RunTracker, run_id: str, spec: Spec, model: Any, result: RunResult, figures: bool) -> None:
    tracker.log_text(run_id, spec.to_yaml(), "spec.yaml")
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=100)
    tracker.log_text(run_id, "\n".join(lines), "model_summary.txt")
    if figures and result.history:
        from nnlab.train._figures import learning_curve

        # drawn where the tracker lives: in the helper process of `nnlab run`, off the critical path
        tracker.log_drawn(run_id, "learning_curve.png", learning_curve, result.history,
                          f"{spec.name} ({result.status})")


def run_params(spec: Spec, data: Dataset) -> dict[str, Any]:
    """A run's MLflow params: the spec's keys that apply to its model family and dataset (none null,
    see ``Spec.flat_params``) and ``data.n_train``, the number of training examples it used."""
    return {**spec.flat_params(applicable=True), "data.n_train": len(data.x_train)}


def _inputs(spec: Spec, data: Dataset, pretrain: Dataset | None) -> list[dict[str, Any]]:
    """The run's datasets: each split with a digest of its arrays (see ``nnlab.tracking._inputs``)."""
    from nnlab.tracking._inputs import split_inputs

    splits = {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
              "test": (data.x_test, data.y_test), **data.extra}
    out = split_inputs(data.name, splits, path=spec.data.path if data.name == "csv" else None)
    if pretrain is not None:
        out += split_inputs(pretrain.name, {"pretrain": (pretrain.x_train, pretrain.y_train)},
                            path=spec.data.path if pretrain.name == "csv" else None)
    return out


def _tf_version() -> str:
    import tensorflow as tf

    return str(tf.__version__)


def run_spec(spec: Spec, tracker: RunTracker | None, **kwargs: Any) -> RunResult:
    return execute(prepare(spec), tracker, **kwargs)


__all__ = ["Prepared", "RunResult", "best_epoch", "execute", "kept_epoch", "prepare", "run_spec"]
