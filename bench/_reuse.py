"""Goals 10-12 and 14: a worker keeps a cell's compiled model between the cell's runs (``sweep.reuse``) and
trains a cell's confirm repeats together (``sweep.cohort``).

- 10: the depth study's full sweep (2 workers, 2 cores) as by default (kept models, cohorts) / with
  ``sweep.reuse=false sweep.cohort=1`` (every run builds, compiles and traces its model: the behaviour
  before), whole wall time, and the verdicts of both.
- 14: the same study's confirm repeats alone (no tuning): cohorts / kept models one run at a time / every
  run built anew.
- 11: per-run set-up of the runs after a cell's first / of the first run, in one process, on cells of the
  depth study. Set-up = ``prepare`` + the first epoch's time beyond a steady epoch (the median of the later
  ones): data, building, compiling, tracing, the first evaluation's trace.
- 12: RSS over 200 runs in one process with the model cache, as a worker runs them: a cell's runs in a row
  (seed and learning rate change every run), another cell every 10 runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._harness import (
    ROOT,
    SPECS,
    VENV_PYTHON,
    Ctx,
    Row,
    alternate,
    bench_env,
    child_main,
    rss_kib,
    run_child,
    run_timed,
)

NNLAB = str(Path(VENV_PYTHON).parent / "nnlab")
CELLS = ({"model.depth": 1}, {"model.depth": 16},
         {"model.depth": 32, "model.residual": True, "model.normalization": "batch"})


def child_setup(args: dict[str, Any]) -> dict[str, Any]:
    from nnlab.spec import Spec
    from nnlab.train import execute, prepare
    from nnlab.train._reuse import ModelCache

    spec = Spec.from_yaml(str(ROOT / "experiments" / "depth.yaml"))
    out = []
    for cell in args["cells"]:
        cache = ModelCache()
        setups = []
        for run in range(int(args["runs"])):
            values = {**cell, "train.seed": run, "data.seed": run, "train.learning_rate": 0.001 * (1 + run)}
            marks: list[float] = []
            started = time.perf_counter()
            prepared = prepare(spec.with_values(values), cache)
            marks.append(time.perf_counter())

            def hook(epoch: int, metrics: dict[str, float], marks: list[float] = marks) -> bool:
                marks.append(time.perf_counter())
                return False

            execute(prepared, None, figures=False, epoch_hook=hook)
            steady = statistics.median(b - a for a, b in zip(marks[1:], marks[2:], strict=False))
            setups.append((marks[0] - started) + (marks[1] - marks[0]) - steady)
            assert prepared.reused == (run > 0), (cell, run, prepared.reused)
        cache.release()
        out.append({"cell": cell, "setup_s": setups})
    return {"cells": out}


def child_memory(args: dict[str, Any]) -> dict[str, Any]:
    import os

    os.environ["NNLAB_STORE"] = tempfile.mkdtemp(prefix="nnlab-bench-reuse-mem-")
    from nnlab.spec import Spec
    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker
    from nnlab.train import execute, prepare
    from nnlab.train._reuse import ModelCache

    spec = Spec.from_yaml(str(SPECS / "digits_mlp.yaml"), ["train.epochs=2"])
    tracker = Tracker(resolve_store())
    cache = ModelCache()
    rss = []
    for i in range(int(args["runs"])):
        run = spec.with_values({"model.depth": 1 + (i // 10) % 4, "train.seed": i,
                                "train.learning_rate": 0.001 * (1 + i % 3)})
        execute(prepare(run, cache), tracker, phase="tune", figures=False)
        rss.append(rss_kib())
        if (i + 1) % 25 == 0:
            print(f"  run {i + 1}: RSS {rss[-1] / 1024:.0f} MiB", file=sys.stderr, flush=True)
    return {"rss_kib": rss, "builds": cache.builds, "reuses": cache.reuses, "evictions": cache.evictions,
            "capacity": cache.capacity}


def measure_setup(ctx: Ctx) -> None:
    runs = 3 if ctx.quick else 5
    ctx.log(f"goal 11: per-run set-up with a kept model, {runs} runs per cell")
    found = run_child("bench._reuse", "setup", {"cells": list(CELLS), "runs": runs},
                      env=bench_env(NNLAB_THREADS="1"), log_to=ctx.work / "logs" / "reuse_setup.log")["cells"]
    ratios, parts = [], []
    for cell in found:
        first, later = cell["setup_s"][0], statistics.median(cell["setup_s"][1:])
        ratios.append(later / first)
        name = ",".join(f"{k.split('.')[-1]}={v}" for k, v in cell["cell"].items())
        parts.append(f"{name}: first {first:.2f} s, later {later:.3f} s ({later / first:.3f}x)")
    worst = max(ratios)
    ctx.rows.append(Row("11", "tracing: per-run set-up after a cell's first run / the first run's (worst cell)",
                        worst, f"{worst:.3f}x", "<= 0.1x", worst <= 0.1,
                        "one process, 1 thread, depth study cells, 12 epochs; set-up = prepare + first epoch "
                        "beyond a steady epoch; median of the later runs; " + "; ".join(parts)))


def measure_memory(ctx: Ctx) -> None:
    runs = 40 if ctx.quick else 200
    ctx.log(f"goal 12: RSS over {runs} runs with the model cache")
    found = run_child("bench._reuse", "memory", {"runs": runs}, env=bench_env(),
                      log_to=ctx.work / "logs" / "reuse_memory.log")
    rss = found["rss_kib"]
    growth = (rss[-1] - rss[0]) / rss[0]
    marks = [1, 10, 20, 50, 100, 150, 200]
    series = ", ".join(f"#{m}: {rss[m - 1] / 1024:.0f}" for m in marks if m <= len(rss))
    ctx.rows.append(Row("12", f"memory over {runs} runs in one worker with kept models: RSS growth first -> last",
                        growth * 100, f"{growth * 100:+.1f}%", "<= 10%", growth <= 0.10,
                        f"RSS MiB {series}; {found['builds']} models compiled, {found['reuses']} runs reused one, "
                        f"{found.get('evictions', 0)} dropped to make room (4 graphs in turn, room for "
                        f"{found.get('capacity', 1)}); no clear_session while a model is kept"))


ARMS = {  # how a worker runs a cell's runs
    "cohorts": ["sweep.reuse=true", "sweep.cohort=auto"],  # the default: kept models, confirm repeats together
    "kept": ["sweep.reuse=true", "sweep.cohort=1"],  # kept models, one model per run
    "anew": ["sweep.reuse=false", "sweep.cohort=1"],  # every run built, compiled and traced (the old way)
}
CONFIRM_ONLY = ["sweep.tune={}", "sweep.trials=0"]  # the depth study's cells, confirm repeats only


def _sweep(ctx: Ctx, arm: str, round_: int, extra: list[str], tag: str) -> tuple[float, str]:
    store = ctx.work / "reuse" / f"{tag}-{arm}-{round_}"
    if store.exists():
        import shutil

        shutil.rmtree(store)
    store.mkdir(parents=True)
    spec = str(ROOT / "experiments" / "depth.yaml")
    profile = ["--profile", "quick"] if ctx.quick else []
    env = bench_env(NNLAB_STORE=str(store))
    seconds, _ = run_timed([NNLAB, "sweep", spec, *ARMS[arm], *extra, "--workers", "2", "--progress", "lines",
                            *profile], env=env, timeout=3600,
                           log_to=ctx.work / "logs" / f"{tag}_sweep_{arm}_{round_}.log")
    run_timed([NNLAB, "report", spec, "--no-log", "--out", str(store / "report")], env=env,
              timeout=900, log_to=ctx.work / "logs" / f"{tag}_report_{arm}_{round_}.log")
    return seconds, ", ".join(_verdicts((store / "report" / "report.md").read_text()))


def _verdicts(markdown: str) -> list[str]:
    """The verdict column of the report's claims table, in order."""
    rows = [line for line in markdown.split("## Claims", 1)[-1].split("\n## ", 1)[0].splitlines()
            if line.startswith("| ") and not line.startswith("| claim") and not line.startswith("| ---")]
    return [row.split(" | ")[1].strip() for row in rows]


def _alternate(ctx: Ctx, arms: tuple[str, ...], extra: list[str], tag: str
               ) -> tuple[dict[str, list[float]], list[bool], list[str]]:
    """Each round runs every arm (the harness's ``alternate``: order rotated, reversed in odd rounds);
    their wall times, whether the verdicts were the same in all arms, and what each round found."""
    rounds = 1 if ctx.quick else min(ctx.repeats, 2)

    def arm_runner(arm: str) -> Any:
        done: list[int] = []  # this arm's rounds so far: each gets its own store

        def run() -> tuple[float, str]:
            done.append(1)
            return _sweep(ctx, arm, len(done) - 1, extra, tag)

        return run

    got = alternate({arm: arm_runner(arm) for arm in arms}, rounds, ctx.log)
    times = {arm: [seconds for seconds, _ in got[arm]] for arm in arms}
    same = [len({got[arm][r][1] for arm in arms}) == 1 for r in range(rounds)]
    shown = [f"round {r + 1}: " + ", ".join(f"{arm} {got[arm][r][0]:.0f} s ({got[arm][r][1]})" for arm in arms)
             for r in range(rounds)]
    return times, same, shown


def measure_sweep(ctx: Ctx) -> None:
    ctx.log("goal 10: the depth study, cohorts and kept models / every run built anew")
    times, same, shown = _alternate(ctx, ("cohorts", "anew"), [], "depth")
    on, off = statistics.median(times["cohorts"]), statistics.median(times["anew"])
    ratio = on / off
    ctx.rows.append(Row("10", "the depth study's sweep (2 workers): cohorts and kept models (the default) / one "
                        "model per run, each built anew, wall time", ratio, f"{ratio:.2f}x", "<= 0.5x", ratio <= 0.5,
                        f"median of {len(same)}; default {on:.0f} s, anew {off:.0f} s; verdicts identical in "
                        f"{sum(same)} of {len(same)} rounds; " + "; ".join(shown)))


def measure_confirm(ctx: Ctx) -> None:
    ctx.log("goal 14: the depth study's confirm repeats alone: cohorts / kept models / built anew")
    times, same, shown = _alternate(ctx, ("cohorts", "kept", "anew"), CONFIRM_ONLY, "confirm")
    cohorts, kept, anew = (statistics.median(times[arm]) for arm in ("cohorts", "kept", "anew"))
    detail = (f"median of {len(same)}; 12 cells x 3 repeats, 12 epochs, 2 workers; cohorts {cohorts:.0f} s, kept "
              f"{kept:.0f} s, anew {anew:.0f} s; verdicts identical in {sum(same)} of {len(same)} rounds; "
              + "; ".join(shown))
    ctx.rows.append(Row("14", "confirm phase alone (the depth study's repeats): cohorts and kept models / one model "
                        "per run, each built anew, wall time", cohorts / anew, f"{cohorts / anew:.2f}x", "<= 0.35x",
                        cohorts / anew <= 0.35, detail))
    ctx.rows.append(Row("14b", "confirm phase alone: cohorts / one model per run from kept models (what cohorts "
                        "add), wall time", cohorts / kept, f"{cohorts / kept:.2f}x", "lever", None, "same rounds"))


if __name__ == "__main__":
    child_main({"setup": child_setup, "memory": child_memory}, skip_teardown=True)
