"""Goals 1 and 6 and the in-process levers, each measured inside ONE child process.

Goal 1 alternates, in one process, the bench job in bare Keras (as a user writes it: Keras
defaults, data already in memory) and the same job through nnlab (``prepare`` + ``execute``:
build, fit with diagnostics, track to a fresh SQLite store, evaluate, artifacts and figure).
The levers run in the same rotation: nnlab with ``steps_per_execution`` 1, without diagnostics,
without the per-epoch training-set evaluation (``execute(train_eval=False)``, a switch for this
measurement only), without the figure, with each mixed precision and with XLA; bare Keras with ``steps_per_execution``
32, with XLA, and fed nnlab's tf.data pipelines instead of NumPy arrays.

Goal 6 alternates one tune-like trial (no figure) with ways of logging its epochs: none, nnlab's
background writer (the default), one synchronous write per epoch, one write per value; and, in a
process of its own, none against MLflow's own ``synchronous=False``. Each trial is checked
afterwards for lost epochs.

``python -m bench._inproc overhead|logging JSON`` is the child; ``measure_*`` the driver side.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from typing import Any

from bench._harness import (
    SPECS,
    Ctx,
    Lever,
    Row,
    alternate,
    bench_env,
    child_main,
    median,
    paired_ratio,
    run_child,
)

JOB_SPEC = SPECS / "digits_mlp.yaml"
# spec options measured as levers of goal 1: variant name -> (key, value)
OPTIONS: dict[str, tuple[str, Any]] = {
    "nnlab_bf16": ("train.precision", "mixed_bfloat16"),
    "nnlab_fp16": ("train.precision", "mixed_float16"),
    "nnlab_xla": ("train.jit_compile", True),
}


# ------------------------------------------------------------------------------------------------
# child side


def _setup(epochs: int, store: str) -> tuple[Any, Any, Any]:
    import os

    os.environ["NNLAB_STORE"] = store
    from nnlab.spec import Spec
    from nnlab.train import prepare
    from nnlab.train._env import keras

    spec = Spec.from_yaml(str(JOB_SPEC), [f"train.epochs={epochs}"])
    data = prepare(spec).data  # loads (and caches) the data set
    keras().backend.clear_session()
    return spec, data, keras()


def _bare_keras(keras: Any, data: Any, epochs: int, spe: int = 1, jit: bool | str = "auto",
                tfdata: bool = False) -> None:
    """The job as a user writes it in Keras (defaults: steps_per_execution=1, no XLA on CPU, NumPy
    arrays); ``tfdata`` feeds it nnlab's tf.data pipelines instead (to attribute that lever)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  steps_per_execution=spe, jit_compile=jit)
    if tfdata:
        from nnlab.train._runner import _pipelines

        train, val = _pipelines(data, 32, 0)
        model.fit(train, epochs=epochs, validation_data=val, verbose=0)
    else:
        model.fit(data.x_train, data.y_train, batch_size=32, epochs=epochs, validation_data=(data.x_val, data.y_val),
                  verbose=0)
    model.evaluate(data.x_test, data.y_test, verbose=0)


def _clean(keras: Any) -> None:
    keras.backend.clear_session()
    gc.collect()


def _timed(fn: Any, keras: Any) -> float:
    started = time.perf_counter()
    fn()
    seconds = time.perf_counter() - started
    _clean(keras)
    return seconds


def child_overhead(args: dict[str, Any]) -> dict[str, Any]:
    from nnlab.data import clear_cache, load_dataset
    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker
    from nnlab.train import execute, prepare

    epochs, repeats = int(args["epochs"]), int(args["repeats"])
    store = tempfile.mkdtemp(prefix="nnlab-bench-store-")
    spec, data, keras = _setup(epochs, store)
    tracker = Tracker(resolve_store())
    spe1 = spec.with_values({"train.steps_per_execution": 1})
    nodiag = spec.with_values({"train.diagnostics": False})

    def nnlab(s: Any = spec, figures: bool = True, train_eval: bool = True) -> Any:
        return lambda: execute(prepare(s), tracker, phase="run", figures=figures, train_eval=train_eval)

    def cold_data() -> float:
        clear_cache()
        started = time.perf_counter()
        load_dataset(spec.data)
        return time.perf_counter() - started

    def warm_data() -> float:
        started = time.perf_counter()
        load_dataset(spec.data)
        return time.perf_counter() - started

    # the per-epoch training-set evaluation timed inside the runs (its share does not depend on how
    # loaded the machine is between paired runs): recorded for the "nnlab" variant
    from nnlab.train import _callbacks as cb

    spent = [0.0]
    evaluate = cb.TrainEval.on_epoch_end

    def timed_eval(self: Any, epoch: int, logs: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        evaluate(self, epoch, logs)
        spent[0] += time.perf_counter() - started

    cb.TrainEval.on_epoch_end = timed_eval  # type: ignore[method-assign]
    eval_share: list[float] = []
    eval_per_epoch: list[float] = []

    def nnlab_default() -> None:
        spent[0] = 0.0
        started = time.perf_counter()
        result = execute(prepare(spec), tracker, phase="run", figures=True)
        eval_share.append(spent[0] / (time.perf_counter() - started))
        eval_per_epoch.append(spent[0] / max(1, result.epochs))

    variants = {"keras": lambda: _bare_keras(keras, data, epochs), "nnlab": nnlab_default}
    if args.get("levers", True):
        variants.update({
            "nnlab_spe1": nnlab(spe1),
            "nnlab_nodiag": nnlab(nodiag),
            "nnlab_notraineval": nnlab(train_eval=False),
            "nnlab_nofigure": nnlab(figures=False),
            "keras_spe32": lambda: _bare_keras(keras, data, epochs, spe=32),
            "keras_tfdata": lambda: _bare_keras(keras, data, epochs, tfdata=True),
            "keras_xla": lambda: _bare_keras(keras, data, epochs, jit=True),
        })
        variants.update({name: nnlab(spec.with_values({key: value})) for name, (key, value) in OPTIONS.items()})
    for fn in variants.values():  # warm-up: first traces, lazy imports, the experiment's creation
        _timed(fn, keras)
    eval_share.clear()
    eval_per_epoch.clear()
    samples = alternate({name: (lambda fn=fn: _timed(fn, keras)) for name, fn in variants.items()}, repeats,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    samples["data_cold"] = [cold_data() for _ in range(repeats)]
    samples["data_cached"] = [warm_data() for _ in range(repeats)]
    from nnlab.train._env import device_description

    samples["device"] = [device_description()]
    samples["train_eval_examples"] = [float(min(len(data.x_train), len(data.x_val)))]
    samples["train_eval_share"] = eval_share
    samples["train_eval_per_epoch"] = eval_per_epoch
    return samples


def _logging_trackers(store: Any) -> dict[str, Any]:
    """Trackers that differ only in how ``log_epoch`` writes (see the module doc)."""
    from nnlab.tracking._mlflow import Tracker, _metric_items

    class NoEpochs(Tracker):
        def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None:
            pass

    class SyncPerEpoch(Tracker):  # nnlab before the background writer: one log_batch per epoch
        def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None:
            self.log_metrics(run_id, metrics, step)

    class PerValue(Tracker):  # a naive callback: mlflow.log_metric for each value
        def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None:
            for key, value in metrics.items():
                self.client.log_metric(run_id, key.replace("/", "_"), float(value), step=step)

    class MlflowAsync(Tracker):  # MLflow's own asynchronous logging, flushed at the end of the run
        def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None:
            items, tags = _metric_items(metrics, step, True)
            self.client.log_batch(run_id, metrics=items, tags=tags, synchronous=False)

        def flush(self) -> None:
            self.client._tracking_client.store.flush_async_logging()
            super().flush()

    return {"none": NoEpochs, "background": Tracker, "sync_epoch": SyncPerEpoch, "per_value": PerValue,
            "mlflow_async": MlflowAsync}


def child_logging(args: dict[str, Any]) -> dict[str, Any]:
    from nnlab.tracking import resolve_store
    from nnlab.train import execute, prepare

    epochs, repeats = int(args["epochs"]), int(args["repeats"])
    store_dir = tempfile.mkdtemp(prefix="nnlab-bench-store-")
    spec, data, keras = _setup(epochs, store_dir)
    store = resolve_store()
    kinds = _logging_trackers(store)
    trackers = {name: kinds[name](store) for name in args["variants"]}
    blocked: dict[str, list[float]] = {name: [] for name in trackers}
    cpu: dict[str, list[float]] = {name: [] for name in trackers}
    lost: dict[str, int] = {name: 0 for name in trackers}
    client = trackers["none"].client

    def trial(name: str) -> float:
        tracker = trackers[name]
        inner = tracker.log_epoch
        spent = [0.0]

        def timed_log_epoch(run_id: str, metrics: dict[str, float], step: int) -> None:
            t = time.perf_counter()
            inner(run_id, metrics, step)
            spent[0] += time.perf_counter() - t

        tracker.log_epoch = timed_log_epoch
        started, cpu_started = time.perf_counter(), time.process_time()
        result = execute(prepare(spec), tracker, phase="tune", figures=False)
        seconds = time.perf_counter() - started
        cpu[name].append(time.process_time() - cpu_started)  # every thread of this process
        del tracker.log_epoch
        blocked[name].append(spent[0] / seconds)
        if name != "none":
            logged = len(client.get_metric_history(result.run_id, "val_loss"))
            lost[name] += result.epochs - logged
        _clean(keras)
        return seconds

    for name in trackers:
        trial(name)  # warm-up
    for values in (*blocked.values(), *cpu.values()):
        values.clear()
    for name in lost:
        lost[name] = 0
    samples = alternate({name: (lambda n=name: trial(n)) for name in trackers}, repeats,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    return {"seconds": samples, "cpu": cpu, "blocked": blocked, "lost": lost}


# ------------------------------------------------------------------------------------------------
# driver side


def measure_overhead(ctx: Ctx, epochs: int, levers: bool = True) -> None:
    from nnlab.spec import format_value

    ctx.log(f"goal 1: bare Keras vs nnlab in one process ({epochs} epochs, {ctx.repeats} rounds"
            f"{', with the levers' if levers else ''})")
    s = run_child("bench._inproc", "overhead", {"epochs": epochs, "repeats": ctx.repeats, "levers": levers},
                  env=bench_env(), log_to=ctx.work / "logs" / "overhead.log")
    ratio = paired_ratio(s, "nnlab", "keras")
    ctx.rows.append(Row("1", "in-process overhead: nnlab run (build, fit, track) / bare Keras, same job", ratio,
                        f"{ratio:.3f}x", "<= 1.05x", ratio <= 1.05,
                        f"median of {len(s['nnlab'])} rounds; nnlab {median(s['nnlab']):.2f} s, Keras "
                        f"{median(s['keras']):.2f} s; {epochs} epochs digits MLP 64-64; nnlab with diagnostics, "
                        "SQLite tracking, artifacts and figure; Keras with its defaults"))
    if not levers:
        return
    spe = paired_ratio(s, "nnlab_spe1", "nnlab")
    ctx.levers.append(Lever("steps_per_execution auto (min(steps/epoch, 32))", "nnlab with 1 / with auto",
                            f"{spe:.2f}x", "kept" if spe > 1.02 else "no gain",
                            f"bare Keras with 32 / with 1: {paired_ratio(s, 'keras_spe32', 'keras'):.2f}x"))
    tfdata = paired_ratio(s, "keras_tfdata", "keras")
    ctx.levers.append(Lever("training data as a plain tf.data pipeline (nnlab.train._runner._pipelines)",
                            "bare Keras fed by it / fed NumPy arrays", f"{tfdata:.2f}x",
                            "kept" if tfdata < 0.98 else "no gain",
                            "Keras's NumPy adapter builds new iterators every epoch; same batches, same reshuffle"))
    diag = paired_ratio(s, "nnlab", "nnlab_nodiag")
    ctx.levers.append(Lever("per-epoch diagnostics (gradient norms, dead units)", "with / without", f"{diag:.3f}x",
                            "kept (default on; train.diagnostics: false turns it off)",
                            "per epoch, one eager forward/backward pass on a fixed 256-example batch (a probe model "
                            "returns the activations and the output)"))
    evals = paired_ratio(s, "nnlab", "nnlab_notraineval")
    share, per_epoch = median(s["train_eval_share"]), median(s["train_eval_per_epoch"])
    ctx.levers.append(Lever("per-epoch training-set evaluation (train_eval_*, the reference of gap_*)",
                            "with / without; timed inside the runs", f"{evals:.3f}x; {share * 100:.1f}% of a run",
                            "kept (always on; the gap needs it)",
                            f"timed inside nnlab's runs: {per_epoch * 1000:.1f} ms per epoch, {share * 100:.1f}% of "
                            f"the run (median of {len(s['train_eval_share'])}); one evaluate() per epoch of the first "
                            f"{s['train_eval_examples'][0]:.0f} training examples (as many as validation) with the "
                            "test function validation traced; goal 1's nnlab includes it"))
    fig = paired_ratio(s, "nnlab", "nnlab_nofigure")
    ctx.levers.append(Lever("learning-curve figure (object API, fixed layout)", "with / without", f"{fig:.3f}x",
                            "kept (sweeps draw it for confirm runs only)",
                            "in-process; in `nnlab run` the helper process draws it"))
    xla = paired_ratio(s, "keras_xla", "keras")
    ctx.levers.append(Lever("XLA (jit_compile=True) on CPU", "bare Keras with XLA / without", f"{xla:.2f}x",
                            "not used on CPU (jit_compile=False)" if xla > 0.97 else "pays: consider it",
                            "compile time is paid again by every new model, i.e. every trial"))
    device = s["device"][0]
    for name, (key, value) in OPTIONS.items():
        figure = paired_ratio(s, name, "nnlab")
        ctx.levers.append(Lever(f"{key}: {format_value(value)} (option)", f"nnlab with it / without, on {device}",
                                f"{figure:.2f}x", "pays here" if figure < 0.97 else "does not pay here (off by default)",
                                "a spec option for accelerators; this job is a tiny MLP"))
    cold, cached = median(s["data_cold"]), median(s["data_cached"])
    ctx.levers.append(Lever("data loaded once per process (cache)", "load_dataset cold / cached",
                            f"{cold * 1000:.0f} ms / {cached * 1000:.2f} ms",
                            "kept", f"cold load = {cold / median(s['nnlab']) * 100:.1f}% of one run"))


def measure_logging(ctx: Ctx, epochs: int) -> None:
    repeats = ctx.repeats if ctx.quick else max(7, ctx.repeats)  # a small difference: more rounds
    ctx.log(f"goal 6: per-epoch logging variants ({epochs} epochs, {repeats} rounds of 4)")
    # MLflow's own asynchronous logging leaves thread pools behind that slow whatever runs next: it gets
    # a child process of its own, against the same no-logging baseline
    out = run_child("bench._inproc", "logging", {"epochs": epochs, "repeats": repeats,
                                                 "variants": ["none", "background", "sync_epoch", "per_value"]},
                    env=bench_env(), log_to=ctx.work / "logs" / "logging.log")
    mine = run_child("bench._inproc", "logging", {"epochs": epochs, "repeats": max(3, repeats // 2),
                                                  "variants": ["none", "mlflow_async"]},
                     env=bench_env(), log_to=ctx.work / "logs" / "logging.log")

    def share(result: dict[str, Any], name: str, key: str = "seconds") -> float:
        of = result[key]
        return median([(a - b) / a for a, b in zip(of[name], of["none"], strict=False)])

    s, blocked, lost = out["seconds"], out["blocked"], out["lost"]
    value = share(out, "background")
    ctx.rows.append(Row("6", "tracking cost: per-epoch MLflow logging as a share of trial time", value * 100,
                        f"{value * 100:.1f}%", "<= 3%", value <= 0.03,
                        f"(trial with per-epoch logging - trial without) / trial, median of {len(s['none'])} rounds; "
                        f"trial {median(s['background']):.2f} s; in CPU time (all threads) "
                        f"{share(out, 'background', 'cpu') * 100:.1f}%; training thread blocked "
                        f"{median(blocked['background']) * 100:.2f}%; epochs lost: {lost['background']}"))
    for result, name, label in ((out, "sync_epoch", "one synchronous log_batch per epoch (before)"),
                                (out, "per_value", "one log_metric per value (naive callback)"),
                                (mine, "mlflow_async", "MLflow synchronous=False, flushed at run end")):
        figure = share(result, name)
        ctx.levers.append(Lever(f"per-epoch logging: {label}", "share of trial time (background writer: "
                                f"{value * 100:.1f}%)", f"{figure * 100:.1f}%",
                                "dropped" if figure > value + 0.01 else "no better than the background writer",
                                f"in CPU time {share(result, name, 'cpu') * 100:.1f}%; training thread blocked "
                                f"{median(result['blocked'][name]) * 100:.1f}%; epochs lost {result['lost'][name]}"))


if __name__ == "__main__":
    child_main({"overhead": child_overhead, "logging": child_logging}, skip_teardown=True)
