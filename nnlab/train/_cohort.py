"""Cohorts: the runs of one graph trained together as one computation.

A cell's confirm repeats share the architecture and every setting but their seeds; its tune trials
that tune only the learning rate (or other values that leave the graph as it is) share it too. A
cohort of K of them stacks each variable of the model along a new first axis, one slice per member,
and trains all K in one traced step: ``tf.vectorized_map`` over the model's ``stateless_call`` turns every matmul,
convolution and recurrence into its batched form. Each member keeps its own

- weights, batch-norm statistics and dropout and augmentation seed states (its slices, set from a
  model built from its own seed, as the run alone would start),
- data: its own split (``data.seed`` may differ) and its own order, the very permutations the run
  alone draws (``_runner._pipelines``),
- optimizer state: every optimizer nnlab offers updates elementwise, so the slots of a stacked
  variable are the members' own; the shared step counter counts the same steps for all,
- learning rate: the optimizer steps at rate 1 and each member moves by its own rate times that
  step (``_Engine``), so tune trials that differ only in the rate can train together,
- early stopping (Keras's rule, its best weights kept per member), pruning (a hook per member, as
  ``execute``'s), metrics and diagnostics.

One engine per graph (kept with the graph's model in the worker's ``ModelCache``) serves cohorts of any
size up to its capacity, a single run included: a cell is traced once per worker.

A member's per-epoch values equal the run alone within float32 rounding (the batched kernels sum in
another order; measured ~2e-7 relative, tested at 1e-5). What a cohort cannot reproduce exactly it
does not try to: a member whose running loss turned non-finite or exploded (where the run alone may
stop in the middle of an epoch) comes back as None and is run alone, and so does every member when
the runs do not share one graph (``ModelCache.key``) or use something that would mix the members
(``blocker``). A cohort writes nothing: its caller tracks each member as the run it stands for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlab.data import Dataset, load_dataset
from nnlab.spec import Spec
from nnlab.tracking import RunTracker
from nnlab.train._reuse import ModelCache
from nnlab.train._runner import (
    DIAGNOSTIC_BATCH,
    TAG,
    Prepared,
    RunResult,
    _batch,
    _loss_and_metrics,
    prepare,
)

AUTO_CPU, AUTO_GPU = 8, 32  # members of an ``auto`` cohort at most, without and with a GPU
AUTO_MEMORY = 1 << 30  # bytes of stacked data an ``auto`` cohort holds at most


def blocker(spec: Spec) -> str | None:
    """Why runs of ``spec`` cannot train in a cohort; None when they can."""
    train = spec.train
    if train.pretrain is not None:
        return "pre-training builds a second model per run"
    if train.precision != "float32":
        return "mixed precision scales each run's loss on its own"
    if train.clipnorm:
        return "gradient clipping by norm would take the norm over every member"
    return None


def cohort_size(setting: int | str, slots: int, gpu: bool, member_bytes: int = 0) -> int:
    """Members per cohort: ``sweep.cohort``, at most ``slots``. ``auto``: up to 8 on the CPU, 32 on a GPU,
    and no more than ``AUTO_MEMORY`` of stacked data (``member_bytes``: what one member stacks)."""
    if setting == "auto":
        fit = AUTO_MEMORY // member_bytes if member_bytes > 0 else slots
        return max(1, min(slots, AUTO_GPU if gpu else AUTO_CPU, fit))
    return max(1, min(slots, int(setting)))


def member_bytes(spec: Spec) -> int:
    """The data one member of a cohort of ``spec``'s runs holds stacked: its training split, its
    validation split and the training examples ``train_eval_*`` measure."""
    data = load_dataset(spec.data)
    subset = min(len(data.x_train), len(data.x_val))
    per_train = (data.x_train.nbytes + data.y_train.nbytes) / max(1, len(data.x_train))
    return int(data.x_train.nbytes + data.y_train.nbytes + data.x_val.nbytes + data.y_val.nbytes
               + subset * per_train)


@dataclass
class Member:
    spec: Spec
    data: Dataset
    history: dict[str, list[float]] = field(default_factory=dict)
    rows: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False  # early stopping or its pruner ended it: its epochs are over, the others go on
    pruned: bool = False
    flagged: bool = False  # its loss diverged: run it alone
    best: float = math.inf
    wait: int = 0

    def record(self, metrics: dict[str, float]) -> None:
        for key, v in metrics.items():
            self.history.setdefault(key, []).append(v)
        self.rows.append(metrics)


class _Layout:
    """Variables of several shapes held as one flat tensor per dtype (``groups``), with any leading axes:
    the cohort's K members stack as ``K x size``. One flat variable per dtype lets the optimizer update a
    model in one step instead of one per variable: on a 32-block batch-norm MLP (98 trainable variables)
    tracing Adam's update took ~2 s per variable list and ~20 ms as one."""

    def __init__(self, variables: Sequence[Any]) -> None:
        self.shapes = [tuple(int(d) for d in v.shape) for v in variables]
        dtypes = [str(v.dtype) for v in variables]
        self.groups = list(dict.fromkeys(dtypes))
        self.where: list[tuple[int, int]] = []  # per variable: its group and its place in the group's order
        self.sizes: list[list[int]] = [[] for _ in self.groups]
        for shape, dtype in zip(self.shapes, dtypes, strict=True):
            g = self.groups.index(dtype)
            self.where.append((g, len(self.sizes[g])))
            self.sizes[g].append(math.prod(shape))

    def pack(self, tensors: Sequence[Any]) -> list[Any]:
        """One variable list's values as one flat tensor per group (traced, or eager: ``pack_values``)."""
        import tensorflow as tf

        parts: list[list[Any]] = [[] for _ in self.groups]
        for (g, _), t in zip(self.where, tensors, strict=True):
            parts[g].append(tf.reshape(t, [-1]))
        return [tf.concat(p, axis=0) for p in parts]

    def pack_values(self, variables: Sequence[Any]) -> list[np.ndarray]:
        """Variables' current values as one flat array per group."""
        return [flat.numpy() for flat in self.pack([v.value for v in variables])]

    def unpack(self, flats: Sequence[Any]) -> list[Any]:
        """One member's flat tensors (one per group) as the variables' values, in their order."""
        import tensorflow as tf

        pieces = [tf.split(flat, sizes, axis=-1) if len(sizes) > 1 else [flat]
                  for flat, sizes in zip(flats, self.sizes, strict=True)]
        return [tf.reshape(pieces[g][i], shape) for (g, i), shape in zip(self.where, self.shapes, strict=True)]


class _Engine:
    """The stacked variables, the optimizer over them and the traced epoch and evaluation functions
    for up to ``capacity`` members of one graph (``template``: a model of it, whose layers compute). Each
    list of variables is held flat (``_Layout``): one ``capacity x size`` variable per dtype. A cohort of
    k <= capacity members uses the first k slices; its functions take k from their inputs, so one trace
    serves every cohort of the graph, of any size (a cell's tune trials one or two at a time, its confirm
    repeats three at a time), and the slices past k cost no arithmetic.

    Each member has its own learning rate: the optimizer runs at rate 1 (under a schedule, the schedule's
    shape at base 1) and each member's step is scaled by its rate. Every optimizer nnlab offers steps by
    its rate times an amount that does not depend on it (the momentum optimizer's velocity and AdamW's
    decay carry the rate, and scale with it), so the member steps as its run alone would."""

    def __init__(self, template: Any, capacity: int, spec: Spec, data: Dataset, steps: int) -> None:
        import tensorflow as tf

        from nnlab.train._env import keras
        from nnlab.train._optim import build_optimizer

        kr = keras()
        self.template, self.capacity = template, capacity
        k = capacity
        self.task = data.info.task
        self.loss_fn, _ = _loss_and_metrics(self.task)
        self.t_layout = _Layout(template.trainable_variables)
        self.n_layout = _Layout(template.non_trainable_variables)
        start_t = self.t_layout.pack_values(template.trainable_variables)
        start_n = self.n_layout.pack_values(template.non_trainable_variables)
        self.tv = [kr.Variable(np.stack([f] * k), name=f"cohort_t{i}") for i, f in enumerate(start_t)]
        self.ntv = [kr.Variable(np.stack([f] * k), trainable=False, name=f"cohort_n{i}") for i, f in enumerate(start_n)]
        self.best_tv = [tf.Variable(v.value, trainable=False) for v in self.tv]
        self.best_ntv = [tf.Variable(v.value, trainable=False) for v in self.ntv]
        self.rates = tf.Variable(tf.ones([k]), trainable=False)
        # the optimizer steps copies of the weights, at rate 1; each member moves by its rate times that step
        self.stepped = [kr.Variable(v.numpy(), name=f"cohort_s{i}") for i, v in enumerate(self.tv)]
        self.optimizer = build_optimizer(spec.train, steps, 1.0)
        self.optimizer.build(self.stepped)
        self.optimizer_start = [v.numpy() for v in self.optimizer.variables]
        self.x = tf.Variable(np.stack([data.x_train] * k), trainable=False)
        self.y = tf.Variable(np.stack([data.y_train] * k), trainable=False)
        self.batch = _batch(spec, data)
        self.n = len(data.x_train)
        jit = spec.train.jit_compile  # auto: what Keras resolves for the model (XLA on a GPU)
        self.jit = bool(template.jit_compile) if jit == "auto" else bool(jit)
        orders = [tf.TensorSpec([None, self.n], tf.int64)]  # k members' orders
        self.train_epoch = tf.function(self._train_epoch, input_signature=orders, jit_compile=self.jit)
        # one trace for every split (validation, training subset, test, extra ones): any number of examples
        examples = [tf.TensorSpec([None, None, *a.shape[1:]], tf.as_dtype(a.dtype)) for a in (data.x_val, data.y_val)]
        self.evaluate = tf.function(self._evaluate, input_signature=examples, jit_compile=self.jit)
        self.snapshot = tf.function(self._snapshot)
        self._assign = tf.function(self._set_member)

    # -- per cohort --------------------------------------------------------------------------------
    def reset(self, models: Sequence[Any], datas: Sequence[Dataset], specs: Sequence[Spec]) -> None:
        """Each member's slices from its own freshly built model, data and learning rate; the optimizer as
        new. The slices past the members' hold copies of the first member's and a rate of 0: never read."""
        pad = self.capacity - len(models)
        datas = [*datas, *[datas[0]] * pad]
        for layout, stacked, of in ((self.t_layout, self.tv, "trainable_variables"),
                                    (self.n_layout, self.ntv, "non_trainable_variables")):
            flats = [layout.pack_values(getattr(m, of)) for m in models]
            flats += [flats[0]] * pad
            for g, var in enumerate(stacked):
                var.assign(np.stack([f[g] for f in flats]))
        for var, value in zip(self.optimizer.variables, self.optimizer_start, strict=True):
            var.assign(value)
        self.rates.assign(np.array([s.train.learning_rate for s in specs] + [0.0] * pad, dtype="float32"))
        self.x.assign(np.stack([d.x_train for d in datas]))
        self.y.assign(np.stack([d.y_train for d in datas]))

    def set_member(self, index: int, best: bool = False) -> None:
        """Member ``index``'s current (or kept) weights into the template, in one traced call: assigned
        eagerly, the 260 variables of a 32-block batch-norm MLP cost ~0.03 s a member, every epoch."""
        import tensorflow as tf

        self._assign(tf.constant(index), best)

    def _set_member(self, index: Any, best: bool) -> None:
        tv, ntv = (self.best_tv, self.best_ntv) if best else (self.tv, self.ntv)
        for layout, stacked, variables in ((self.t_layout, tv, self.template.trainable_variables),
                                           (self.n_layout, ntv, self.template.non_trainable_variables)):
            for var, value in zip(variables, layout.unpack([s[index] for s in stacked]), strict=True):
                var.assign(value)

    # -- traced --------------------------------------------------------------------------------------
    def _member(self, training: bool) -> Callable[[Any], Any]:
        import tensorflow as tf

        template, loss_fn, classify = self.template, self.loss_fn, self.task == "classification"

        t_layout, n_layout = self.t_layout, self.n_layout

        def one(args: Any) -> Any:
            tv, ntv, x, y = args
            pred, ntv_after, losses = template.stateless_call(t_layout.unpack(tv), n_layout.unpack(ntv), x,
                                                              training=training, return_losses=True)
            loss = loss_fn(y, pred)
            if losses:
                loss = loss + tf.add_n(losses)
            if classify:
                hits = tf.cast(tf.equal(tf.argmax(pred, axis=-1, output_type=y.dtype), y), tf.float32)
                values = [tf.reduce_sum(hits)]
            else:
                diff = pred - tf.reshape(tf.cast(y, pred.dtype), tf.shape(pred))
                per_example = tf.reshape(diff, [tf.shape(diff)[0], -1])
                values = [tf.reduce_sum(tf.reduce_mean(tf.abs(per_example), axis=1)),
                          tf.reduce_sum(tf.reduce_mean(tf.square(per_example), axis=1))]
            return loss, tf.stack(values), n_layout.pack(ntv_after)

        return one

    def _train_epoch(self, order: Any) -> Any:
        """One epoch over each member's order (``order``: K x n indices): the sample-weighted mean
        training loss and metric sums per member, as Keras's running averages end the epoch, and
        whether a member's running loss was ever non-finite or above ``DIVERGED_LOSS`` (the bound of
        ``_callbacks.Divergence``)."""
        import tensorflow as tf

        from nnlab.train._callbacks import DIVERGED_LOSS

        one = self._member(training=True)
        n, batch, capacity = self.n, self.batch, self.capacity
        k = tf.shape(order)[0]
        width = 1 if self.task == "classification" else 2
        loss_sum = tf.zeros(tf.stack([k]))
        value_sum = tf.zeros(tf.stack([k, width]))
        count = tf.constant(0.0)
        bad = tf.fill(tf.stack([k]), False)
        offsets = tf.expand_dims(tf.range(tf.cast(k, tf.int64)) * n, 1)  # member i's examples in the flat arrays
        x_flat = tf.reshape(self.x, [-1, *self.x.shape[2:]])
        y_flat = tf.reshape(self.y, [-1, *self.y.shape[2:]])
        for start in tf.range(0, n, batch):
            idx = order[:, start:tf.minimum(start + batch, n)] + offsets
            x = tf.gather(x_flat, idx)
            y = tf.gather(y_flat, idx)
            tv = [v.value for v in self.tv]
            with tf.GradientTape() as tape:
                tape.watch(tv)
                losses, values, ntv_after = tf.vectorized_map(
                    one, ([t[:k] for t in tv], [v.value[:k] for v in self.ntv], x, y), fallback_to_while_loop=True)
                total = tf.reduce_sum(losses)
            grads = tape.gradient(total, tv)  # zero past the k members
            for step, var in zip(self.stepped, self.tv, strict=True):
                step.assign(var.value)
            self.optimizer.apply(grads, self.stepped)  # at rate 1: each member's step, scaled by its rate
            rate = tf.reshape(self.rates, [capacity, 1])  # 0 past the k members: they stay as they are
            for step, var in zip(self.stepped, self.tv, strict=True):
                var.assign(var.value + rate * (step.value - var.value))
            for var, value in zip(self.ntv, ntv_after, strict=True):
                var.assign(tf.concat([value, var.value[k:]], axis=0))
            size = tf.cast(tf.shape(idx)[1], tf.float32)
            loss_sum += losses * size
            value_sum += values
            count += size
            running = loss_sum / count
            bad = bad | ~tf.math.is_finite(running) | (running > DIVERGED_LOSS)
        return loss_sum / count, value_sum / count, bad

    def _evaluate(self, x: Any, y: Any) -> Any:
        """Inference-mode loss and metrics per member over ``x``, ``y`` (k x m each: the first k members),
        in batches."""
        import tensorflow as tf

        one = self._member(training=False)
        k, m = tf.shape(x)[0], tf.shape(x)[1]
        width = 1 if self.task == "classification" else 2
        loss_sum = tf.zeros(tf.stack([k]))
        value_sum = tf.zeros(tf.stack([k, width]))
        for start in tf.range(0, m, self.batch):
            xb = x[:, start:tf.minimum(start + self.batch, m)]
            yb = y[:, start:tf.minimum(start + self.batch, m)]
            losses, values, _ = tf.vectorized_map(one, ([v.value[:k] for v in self.tv], [v.value[:k] for v in self.ntv],
                                                        xb, yb), fallback_to_while_loop=True)
            loss_sum += losses * tf.cast(tf.shape(xb)[1], tf.float32)
            value_sum += values
        total = tf.cast(m, tf.float32)
        return loss_sum / total, value_sum / total

    def restore_kept(self) -> None:
        """Every member's kept weights (see ``_snapshot``) back into its slices, for the final evaluation."""
        for var, best in zip([*self.tv, *self.ntv], [*self.best_tv, *self.best_ntv], strict=True):
            var.assign(best)

    def _snapshot(self, improved: Any) -> None:
        """Keep the current weights of the members in ``improved`` (``capacity`` booleans) as their best."""
        import tensorflow as tf

        for best, var in zip([*self.best_tv, *self.best_ntv], [*self.tv, *self.ntv], strict=True):
            mask = tf.reshape(improved, [-1] + [1] * (len(var.shape) - 1))
            best.assign(tf.where(mask, var.value, best))


def _orders(seeds: Sequence[int], n: int) -> Callable[[], np.ndarray]:
    """Each member's order for the next epoch: the permutations its run alone draws (``_pipelines``)."""
    from nnlab.train._runner import epoch_order, order_draws

    draws = [order_draws(seed) for seed in seeds]

    def next_orders() -> np.ndarray:
        return np.stack([epoch_order(g, n).numpy() for g in draws])

    return next_orders


ENGINE = "cohort"  # where a kept model's probes hold its cohort engines, by member count


class Cohort:
    """K runs of one graph, ready to train together (see ``form_cohort``): their specs and data, the
    prepared template (a compiled model of the graph, kept in the worker's cache) and the engine."""

    def __init__(self, specs: Sequence[Spec], datas: Sequence[Dataset], prepared: Prepared, engine: _Engine) -> None:
        self.specs, self.datas = list(specs), list(datas)
        self.prepared, self.engine = prepared, engine
        self.members = [Member(s, d) for s, d in zip(specs, datas, strict=True)]
        self.started = time.time()
        self.evaluated: list[dict[str, float]] = []  # each member's test_* and extra splits', after training

    def __len__(self) -> int:
        return len(self.members)

    def train(self, between_epochs: Callable[[int], None] | None = None,
              hooks: Sequence[Callable[[int, dict[str, float]], bool] | None] | None = None) -> list[RunResult | None]:
        """Train every member; one result per member, None for one whose loss diverged (train it alone).
        ``between_epochs(epoch)`` runs after each epoch (a stop request raises from it). ``hooks[i](epoch,
        metrics)``, as ``execute``'s ``epoch_hook``, sees member i's epochs; when it returns true the
        member stops there, pruned (a tune trial's pruner), and keeps what its run alone keeps."""
        import tensorflow as tf

        from nnlab.train import _callbacks as cb

        engine, template, members = self.engine, self.prepared.model, self.members
        spec, data = self.specs[0], self.datas[0]
        self.started = time.time()
        val = (tf.constant(np.stack([d.x_val for d in self.datas])),
               tf.constant(np.stack([d.y_val for d in self.datas])))
        m = min(len(data.x_train), len(data.x_val))  # the examples train_eval_* measure (``_train_eval_set``)
        sub = (tf.constant(np.stack([d.x_train[:m] for d in self.datas])),
               tf.constant(np.stack([d.y_train[:m] for d in self.datas]))) if m else None
        loss_fn, names = _loss_and_metrics(data.info.task)  # names: the compiled metrics' (accuracy; mae, mse)
        diagnostics = None
        if spec.train.diagnostics:
            size = min(DIAGNOSTIC_BATCH, len(data.x_train))
            cache, key = self.prepared.cache, self.prepared.cache_key
            kept = (lambda: cache.probes(key)) if cache is not None else None
            diagnostics = [cb.Diagnostics(d.x_train[:size], d.y_train[:size], loss_fn, spec.model.activation,
                                          kept_probes=kept) for d in self.datas]
            for probe in diagnostics:
                probe.set_model(template)
        orders = _orders([s.train.seed for s in self.specs], len(data.x_train))
        patience, restore = spec.train.early_stopping, spec.train.restore_best
        for epoch in range(spec.train.epochs):
            loss, values, bad = (t.numpy() for t in engine.train_epoch(tf.constant(orders())))
            val_loss, val_values = (t.numpy() for t in engine.evaluate(*val))
            sub_loss, sub_values = (t.numpy() for t in engine.evaluate(*sub)) if sub is not None else (None, None)
            keep = np.zeros(engine.capacity, dtype=bool)
            for i, member in enumerate(members):
                if member.stopped or member.flagged:
                    continue
                if bad[i]:
                    member.flagged = True
                    continue
                row = {"loss": float(loss[i]), **{name: float(values[i, j]) for j, name in enumerate(names)},
                       "val_loss": float(val_loss[i]),
                       **{f"val_{name}": float(val_values[i, j]) for j, name in enumerate(names)}}
                if sub_loss is not None and sub_values is not None:
                    prefix = cb.TrainEval.PREFIX
                    row[f"{prefix}loss"] = float(sub_loss[i])
                    row.update({f"{prefix}{name}": float(sub_values[i, j]) for j, name in enumerate(names)})
                if diagnostics is not None:
                    engine.set_member(i)
                    try:
                        row.update(diagnostics[i].compute())
                    except (ValueError, TypeError):  # as the callback: diagnostics are best effort
                        pass
                member.record(row)
                keep[i] = True  # the weights to keep: the latest, or under early stopping (restoring) the best
                if patience is not None:
                    improved = _early_stopping(member, row["val_loss"], epoch, patience)
                    keep[i] = improved or not restore
                hook = hooks[i] if hooks is not None else None
                if hook is not None and hook(epoch, row):
                    member.stopped = member.pruned = True
            if keep.any():
                engine.snapshot(tf.constant(keep))
            if between_epochs is not None:
                between_epochs(epoch)
            if all(mb.stopped or mb.flagged for mb in members):
                break
        self._final_evaluation()
        return [None if member.flagged else RunResult(run_id=None, status="pruned" if member.pruned else "completed",
                                                      history=member.history, epochs=len(member.rows))
                for member in members]

    def _final_evaluation(self) -> None:
        """Each member's kept weights evaluated on the test split and the extra ones, all members at once,
        as ``execute`` evaluates a run's: the weights the cohort kept aside (under early stopping the best
        epoch's, else, or with ``restore_best: false``, its last epoch's: a stopped member's slices went
        on training with the others)."""
        import tensorflow as tf

        from nnlab.train._runner import eval_splits, with_ratios

        self.engine.restore_kept()
        names = _loss_and_metrics(self.datas[0].info.task)[1]
        found: list[dict[str, float]] = [{} for _ in self.members]
        for split in eval_splits(self.datas[0]):
            x = tf.constant(np.stack([eval_splits(d)[split][0] for d in self.datas]))
            y = tf.constant(np.stack([eval_splits(d)[split][1] for d in self.datas]))
            loss, values = (t.numpy() for t in self.engine.evaluate(x, y))
            for i, out in enumerate(found):
                out[f"{split}_loss"] = float(loss[i])
                out.update({f"{split}_{name}": float(values[i, j]) for j, name in enumerate(names)})
        self.evaluated = [with_ratios(out, data) for out, data in zip(found, self.datas, strict=True)]


def form_cohort(specs: Sequence[Spec], cache: ModelCache | None = None, capacity: int | None = None) -> Cohort | None:
    """The runs of ``specs`` (one or more) as one cohort, ready to train; None (train each alone) when they
    do not share one graph (``ModelCache.key``, whatever their learning rates) or one has a ``blocker``.
    Loads each member's data and builds each member's model from its seed; writes nothing. The engine is
    the smallest kept for the graph that holds them all, else a new one for ``capacity`` members (at least
    ``len(specs)``), kept with the graph's model in ``cache``."""
    from nnlab.models import build_model
    from nnlab.train._runner import _enable_determinism

    if not specs or any(blocker(s) for s in specs):
        return None
    datas = [load_dataset(s.data) for s in specs]
    keys = {ModelCache.key(s, d, any_rate=True) for s, d in zip(specs, datas, strict=True)}  # see ``_Engine``
    if None in keys or len(keys) > 1 or len({_shapes(d) for d in datas}) > 1:
        return None
    spec, data, k = specs[0], datas[0], len(specs)
    prepared = prepare(spec, cache)
    # member 0 starts from the template's weights (``prepare`` set them from its seed); the others from
    # models built from theirs (built only: no compiling or tracing)
    models = [prepared.model, *(build_model(s.model, d.info, augment=list(s.data.augment), seed=s.train.seed,
                                            precision=s.train.precision) for s, d in zip(specs[1:], datas[1:], strict=True))]
    if spec.train.deterministic:
        _enable_determinism()
    steps = math.ceil(len(data.x_train) / _batch(spec, data))
    if cache is not None and cache.probes(prepared.cache_key) is None:
        cache.keep(prepared.cache_key, prepared.model)  # uncompiled: the cohort's engine computes, not Keras
    probes = cache.probes(prepared.cache_key) if cache is not None else None
    engines = probes.setdefault(ENGINE, {}) if probes is not None else {}
    fits = [size for size in engines if size >= k]
    if fits:
        engine = engines[min(fits)]
    else:
        size = max(k, capacity or k)
        engine = engines[size] = _Engine(prepared.model, size, spec, data, steps)
    engine.reset(models, datas, specs)
    return Cohort(specs, datas, prepared, engine)


def _shapes(data: Dataset) -> tuple[Any, ...]:
    """What members must share to be stacked: the shapes of every split."""
    from nnlab.train._runner import eval_splits

    splits = {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val), **eval_splits(data)}
    return tuple((name, x.shape, y.shape) for name, (x, y) in sorted(splits.items()))


def _early_stopping(member: Member, current: float, epoch: int, patience: int) -> bool:
    """Keras's ``EarlyStopping(monitor="val_loss")`` for one member, step for step: whether this epoch
    improved on the best (the first epoch always does, whatever its value; NaN never does after it), and
    ``member.stopped`` once ``patience`` epochs in a row did not."""
    member.wait += 1
    if epoch == 0 or current < member.best:
        member.best = current
        member.wait = 0
        return True
    if member.wait >= patience and epoch > 0:
        member.stopped = True
    return False


def start_member(cohort: Cohort, index: int, tracker: RunTracker, *, phase: str, tags: dict[str, str],
                 parent_run_id: str | None, run_name: str) -> str:
    """Member ``index``'s MLflow run, started before the cohort trains (running, its params and datasets,
    the tag ``nnlab.cohort_size``); its epochs are written when the cohort has trained."""
    from nnlab.train._runner import _determinism, start_run

    member = cohort.members[index]
    how = {f"{TAG}cohort_size": str(len(cohort)), f"{TAG}jit_compile": str(cohort.engine.jit).lower(),
           f"{TAG}deterministic": _determinism()}
    return start_run(tracker, member.spec, member.data, None, phase=phase, parent_run_id=parent_run_id,
                     run_name=run_name, tags={**tags, **how})


def finish(cohort: Cohort, index: int, result: RunResult, tracker: RunTracker | None = None,
           run_id: str | None = None, *, figures: bool = True) -> RunResult:
    """Member ``index``'s final metrics (its kept weights evaluated as ``execute`` evaluates them) and, given its
    ``run_id``, everything else the run alone records: per-epoch metrics, final metrics, artifacts, the
    end of the run."""
    from nnlab.train._runner import _artifacts, _chance, _finish, _summaries, conclude

    member = cohort.members[index]
    spec, data = member.spec, member.data
    model = cohort.prepared.model  # the graph all members share: its parameter count and summary
    result.run_id = run_id
    result.metrics.update(_chance(data))
    conclude(result, spec, member.rows, model, data, evaluated=cohort.evaluated[index])
    _summaries(result, model)
    if tracker is None or run_id is None:
        result.seconds = time.time() - cohort.started
        return result
    for epoch, row in enumerate(member.rows):
        tracker.log_epoch(run_id, row, step=epoch)
    _artifacts(tracker, run_id, spec, model, result, figures)
    _finish(tracker, run_id, result, cohort.started, "FINISHED")
    return result


__all__ = ["Cohort", "blocker", "cohort_size", "finish", "form_cohort", "member_bytes", "start_member"]
