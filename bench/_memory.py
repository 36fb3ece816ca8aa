"""Goal 7: memory over many sequential trials in ONE process, the sweep worker's loop.

Each trial is a tiny tune-like run (2 epochs of the digits MLP; depth and seed change from trial
to trial, as in a search) tracked to a SQLite store, followed by ``keras.backend.clear_session()``
and ``gc.collect()``, as ``nnlab.sweep._worker`` does. RSS is read from /proc/self/status after
every trial. The goal compares trial 200 with trial 1 in one process; a sweep worker is recycled
after ``--recycle`` runs (20 by default), so the growth a recycled worker can reach is the growth
from trial 1 to trial 20, reported beside it.
"""

from __future__ import annotations

import gc
import sys
import tempfile
from typing import Any

from bench._harness import SPECS, Ctx, Lever, Row, bench_env, child_main, rss_kib, run_child

RECYCLE = 20


def child_memory(args: dict[str, Any]) -> dict[str, Any]:
    import os

    os.environ["NNLAB_STORE"] = tempfile.mkdtemp(prefix="nnlab-bench-mem-")
    from nnlab.spec import Spec
    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker
    from nnlab.train import execute, prepare
    from nnlab.train._env import keras

    spec = Spec.from_yaml(str(SPECS / "digits_mlp.yaml"), ["train.epochs=2"])
    tracker = Tracker(resolve_store())
    rss = []
    for i in range(int(args["trials"])):
        trial = spec.with_values({"model.depth": 1 + i % 4, "train.seed": i})
        execute(prepare(trial), tracker, phase="tune", figures=False)
        keras().backend.clear_session()
        gc.collect()
        rss.append(rss_kib())
        if (i + 1) % 25 == 0:
            print(f"  trial {i + 1}: RSS {rss[-1] / 1024:.0f} MiB", file=sys.stderr, flush=True)
    return {"rss_kib": rss}


def measure_memory(ctx: Ctx) -> None:
    trials = 40 if ctx.quick else 200
    ctx.log(f"goal 7: RSS over {trials} sequential trials in one process")
    rss = run_child("bench._memory", "memory", {"trials": trials}, env=bench_env(),
                    log_to=ctx.work / "logs" / "memory.log")["rss_kib"]
    first, last = rss[0], rss[-1]
    growth = (last - first) / first
    recycled = (max(rss[:RECYCLE]) - first) / first
    marks = [1, 10, 20, 50, 100, 150, 200]
    series = ", ".join(f"#{m}: {rss[m - 1] / 1024:.0f}" for m in marks if m <= len(rss))
    ctx.rows.append(Row("7", f"memory over {trials} sequential trials in one worker: RSS growth first -> last",
                        growth * 100, f"{growth * 100:+.1f}%", "<= 10%", growth <= 0.10,
                        f"RSS MiB {series}; with clear_session + gc.collect between trials"))
    ctx.levers.append(Lever(f"worker recycling (a fresh worker every {RECYCLE} runs, the sweep's default)",
                            f"RSS growth trial 1 -> {RECYCLE} (what a recycled worker reaches)",
                            f"{recycled * 100:+.1f}%", "kept (nnlab sweep --recycle)",
                            f"one process over {trials} trials: {growth * 100:+.1f}%"))


if __name__ == "__main__":
    child_main({"memory": child_memory}, skip_teardown=True)
