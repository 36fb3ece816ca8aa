"""Goals 2 and 9 and the whole-process levers: commands timed from start to exit.

Goal 2 alternates ``nnlab run bench/specs/digits_mlp.yaml`` with the same job as a hand-written
script (``bench/baselines/keras_job.py``): with MLflow tracking done the way a careful user does
it (the fair comparison: params, every epoch's metrics, test metrics), and without tracking (bare
Keras, reported too). Each side writes to its own store, created by an untimed first run, as a
user's second run finds it. Levers in the same rotation: ``nnlab run`` with the tracking helper
process off (``NNLAB_TRACKING_HELPER=0``), and with the interpreter's teardown skipped.

Goal 9 alternates ``nnlab --help`` with ``python -c pass``.

``python -m bench._process fit JSON`` is a child that times the job's training in-process after
a warm-up, for the thread-count and oneDNN levers (both are read when TensorFlow starts).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench._harness import (
    BASELINES,
    SPECS,
    VENV_PYTHON,
    Ctx,
    Lever,
    Row,
    alternate,
    bench_env,
    child_main,
    median,
    paired_ratio,
    run_child,
    run_timed,
)

JOB_SPEC = SPECS / "digits_mlp.yaml"
NNLAB = str(Path(VENV_PYTHON).parent / "nnlab")
NO_TEARDOWN = ("import os, sys\nfrom nnlab.cli import main\nrc = main(sys.argv[1:])\n"
               "sys.stdout.flush(); sys.stderr.flush()\nos._exit(rc)\n")
LAZY_SWEEP = ("import importlib.util, sys, types\n"
              "found = importlib.util.find_spec('nnlab.sweep')\n"
              "pkg = types.ModuleType('nnlab.sweep'); pkg.__path__ = list(found.submodule_search_locations)\n"
              "sys.modules['nnlab.sweep'] = pkg\n"
              "from nnlab.cli import main\nsys.exit(main(['--help']))\n")


def measure_run(ctx: Ctx, epochs: int) -> None:
    work = ctx.work / "process"
    work.mkdir(parents=True, exist_ok=True)
    nnlab_store, user_store, plain_store = work / "store-nnlab", work / "store-user", work / "store-nohelper"
    user_uri = f"sqlite:///{(user_store / 'mlflow.db').resolve()}"
    user_store.mkdir(exist_ok=True)
    job = [str(JOB_SPEC), f"train.epochs={epochs}"]
    logs = ctx.work / "logs" / "process.log"

    def cmd(args: list[str], **env: str | None) -> Any:
        return lambda: run_timed(args, env=bench_env(**env), cwd=work, log_to=logs)[0]

    variants = {
        "nnlab": cmd([NNLAB, "run", *job], NNLAB_STORE=str(nnlab_store)),
        "user_mlflow": cmd([VENV_PYTHON, str(BASELINES / "keras_job.py"), "--mlflow", user_uri, "--epochs", str(epochs)]),
        "keras_bare": cmd([VENV_PYTHON, str(BASELINES / "keras_job.py"), "--epochs", str(epochs)]),
        "nnlab_no_helper": cmd([NNLAB, "run", *job], NNLAB_STORE=str(plain_store), NNLAB_TRACKING_HELPER="0"),
        "nnlab_no_teardown": cmd([VENV_PYTHON, "-c", NO_TEARDOWN, "run", *job], NNLAB_STORE=str(nnlab_store)),
    }
    ctx.log(f"goal 2: whole processes ({epochs} epochs), warm-up then {ctx.repeats} rounds of {len(variants)}")
    for fn in variants.values():
        fn()  # creates each store; warms the page cache
    s = alternate(variants, ctx.repeats, log=ctx.log)
    fair = paired_ratio(s, "nnlab", "user_mlflow")
    bare = paired_ratio(s, "nnlab", "keras_bare")
    ctx.rows.append(Row("2", "whole-process `nnlab run` / hand-written Keras + MLflow script, same job", fair,
                        f"{fair:.3f}x", "<= 1.25x", fair <= 1.25,
                        f"median of {len(s['nnlab'])} rounds; nnlab {median(s['nnlab']):.2f} s, script "
                        f"{median(s['user_mlflow']):.2f} s; both log params, per-epoch and test metrics to SQLite"))
    ctx.rows.append(Row("2b", "same, against a bare Keras script without any tracking (reported, not the goal)", bare,
                        f"{bare:.3f}x", "(<= 1.25x)", bare <= 1.25,
                        f"bare Keras {median(s['keras_bare']):.2f} s: no MLflow import, no store"))
    helper = paired_ratio(s, "nnlab_no_helper", "nnlab")
    ctx.levers.append(Lever("tracking helper process (MLflow imports on the other core during TF's import)",
                            "nnlab run without / with", f"{helper:.3f}x",
                            "kept" if helper > 1.02 else "no gain",
                            f"without: {median(s['nnlab_no_helper']):.2f} s, with: {median(s['nnlab']):.2f} s"))
    teardown = paired_ratio(s, "nnlab", "nnlab_no_teardown")
    ctx.levers.append(Lever("skip the interpreter's teardown at exit (os._exit once the run is written)",
                            "nnlab run normal / skipped", f"{teardown:.3f}x",
                            "not adopted in `nnlab run` (the sweep worker does it)",
                            f"would bring goal 2 to ~{fair / teardown:.2f}x and 2b to ~{bare / teardown:.2f}x; but "
                            "os._exit also skips atexit hooks (coverage data of subprocesses, user hooks)"))


def measure_help(ctx: Ctx) -> None:
    repeats = ctx.repeats if ctx.quick else max(5, ctx.repeats * 3)  # --quick proves it runs; nothing more
    ctx.log(f"goal 9: nnlab --help start-up, {repeats} rounds")
    variants = {
        "help": lambda: run_timed([NNLAB, "--help"], env=bench_env())[0],
        "python": lambda: run_timed([VENV_PYTHON, "-c", "pass"], env=bench_env())[0],
        "help_lazy_sweep": lambda: run_timed([VENV_PYTHON, "-c", LAZY_SWEEP], env=bench_env())[0],
    }
    for fn in variants.values():
        fn()
    s = alternate(variants, repeats)
    value = median(s["help"])
    ctx.rows.append(Row("9", "`nnlab --help` start-up", value, f"{value:.3f} s", "<= 0.3 s", value <= 0.3,
                        f"median of {repeats}; {paired_ratio(s, 'help', 'python'):.1f}x a bare `python -c pass` "
                        f"({median(s['python']):.3f} s)"))
    lazy = median(s["help_lazy_sweep"])
    lazy_now = lazy >= value - 0.02
    ctx.levers.append(Lever("lazy imports: `nnlab --help` imports no TensorFlow, MLflow, pydantic or pandas",
                            "--help / --help without running nnlab/sweep/__init__.py", f"{value:.3f} s / {lazy:.3f} s",
                            "in place" if lazy_now else "nnlab/sweep/__init__.py should import lazily",
                            "a command module imported for --help must not import heavy packages, even through "
                            "its package's __init__"))


# ------------------------------------------------------------------------------------------------
# thread count and oneDNN: children


def child_fit(args: dict[str, Any]) -> dict[str, Any]:
    from nnlab.spec import Spec
    from nnlab.train import execute, prepare
    from nnlab.train._env import keras

    spec = Spec.from_yaml(str(JOB_SPEC), [f"train.epochs={args['epochs']}"])
    times = []
    for i in range(int(args["runs"]) + 1):
        started = time.perf_counter()
        execute(prepare(spec), None, figures=False)
        if i:
            times.append(time.perf_counter() - started)
        keras().backend.clear_session()
    return {"seconds": median(times)}


def measure_threads(ctx: Ctx, epochs: int) -> None:
    runs = 2 if ctx.quick else 3
    logs = ctx.work / "logs" / "threads.log"

    def fit(**env: str | None) -> Any:
        return lambda: run_child("bench._process", "fit", {"epochs": epochs, "runs": runs}, env=bench_env(**env),
                                 log_to=logs)["seconds"]

    variants = {"threads1": fit(NNLAB_THREADS="1"), "threads2": fit(NNLAB_THREADS="2"),
                "onednn_on": fit(NNLAB_THREADS="2", TF_ENABLE_ONEDNN_OPTS="1")}
    ctx.log(f"levers: thread count and oneDNN, {ctx.repeats} rounds of {len(variants)} child processes")
    s = alternate(variants, ctx.repeats, log=ctx.log)
    one_vs_two = paired_ratio(s, "threads1", "threads2")
    ctx.levers.append(Lever("threads split across workers (NNLAB_THREADS = cores / workers)",
                            "one run with 1 thread / with 2 threads", f"{one_vs_two:.2f}x",
                            "kept: a second thread speeds one small run up far less than a second worker does",
                            f"1 thread {median(s['threads1']):.2f} s, 2 threads {median(s['threads2']):.2f} s "
                            "(the sweep's 2 workers x 1 thread vs 1 x 2: goal 3)"))
    onednn = paired_ratio(s, "onednn_on", "threads2")
    ctx.levers.append(Lever("oneDNN custom ops (TF_ENABLE_ONEDNN_OPTS)", "on / off (nnlab's default: off)",
                            f"{onednn:.2f}x", "kept off: bitwise-reproducible results matter more here"
                            if onednn > 0.95 else "faster on: off is kept for reproducibility", ""))


if __name__ == "__main__":
    child_main({"fit": child_fit}, skip_teardown=True)
