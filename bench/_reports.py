"""Goal 8: ``nnlab report`` over a store of 5,000 finished runs, against a naive read loop.

The store is written once (and kept in ``bench/.work/``) by ``python -m bench._reports build``:
one sweep of ``bench/specs/report_study.yaml`` as the sweep contract records it (a parent run
tagged ``nnlab.phase=sweep``; tune and confirm runs under it with ``nnlab.cell``,
``nnlab.sweep_id``, ``nnlab.slot``, ``nnlab.status``, every spec param, final metrics and a
5-epoch history), through MlflowClient ``create_run`` + ``log_batch``. Synthetic values: the
report's speed does not depend on what the numbers are.

The rotation alternates ``nnlab report`` (its on-disk history cache emptied first, so every
round reads MLflow cold; ``--no-log`` keeps the store unchanged between rounds) with
``bench/baselines/naive_report.py`` (``search_runs`` over all pages, then ``get_metric_history``
of loss and val_loss per run).
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench._harness import (
    BASELINES,
    SPECS,
    VENV_PYTHON,
    Ctx,
    Row,
    alternate,
    bench_env,
    child_main,
    child_result,
    median,
    paired_ratio,
    run_child,
    run_timed,
)

REPORT_SPEC = SPECS / "report_study.yaml"
NNLAB = str(Path(VENV_PYTHON).parent / "nnlab")
STORE_VERSION = 1


def _fast_sqlite(client: Any) -> None:
    """Building fixture data only: no fsync per transaction."""
    from sqlalchemy import event

    engine = client._tracking_client.store.engine
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _pragmas(conn: Any, record: Any) -> None:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA journal_mode=WAL")


def _history(depth: int, activation: str, lr: float, seed: int, epochs: int) -> dict[str, list[float]]:
    import random

    rng = random.Random(seed)
    optimum = 10 ** (-2.5 if activation == "relu" else -2.0)
    penalty = (math.log10(lr) - math.log10(optimum)) ** 2
    final = 0.08 + 0.05 * penalty + (0.02 * depth if activation == "sigmoid" else 0.002 * depth)
    out: dict[str, list[float]] = {k: [] for k in ("loss", "val_loss", "accuracy", "val_accuracy")}
    for e in range(epochs):
        decay = math.exp(-(e + 1) / 2)
        loss = final * 0.8 + 2.3 * decay + rng.gauss(0, 0.01)
        val = final + 2.3 * decay + rng.gauss(0, 0.01)
        out["loss"].append(loss)
        out["val_loss"].append(val)
        out["accuracy"].append(max(0.0, min(1.0, 1 - loss / 2.5)))
        out["val_accuracy"].append(max(0.0, min(1.0, 1 - val / 2.5)))
    return out


def child_build(args: dict[str, Any]) -> dict[str, Any]:
    import os
    import random

    os.environ["NNLAB_STORE"] = args["store"]
    from mlflow.entities import Metric, Param, RunTag

    from nnlab.spec import Spec, expand
    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker

    spec = Spec.from_yaml(str(REPORT_SPEC))
    trials, seeds = int(args["trials"]), int(args["seeds"])
    tracker = Tracker(resolve_store())
    client = tracker.client
    _fast_sqlite(client)
    exp = tracker.experiment_id(spec.name)
    sweep_id = spec.name
    parent = tracker.start_run(spec.name, run_name=f"sweep {sweep_id}", tags={
        "nnlab.phase": "sweep", "nnlab.sweep_id": sweep_id, "nnlab.sweep_hash": spec.spec_hash(),
        "nnlab.status": "running"})
    tracker.log_text(parent, spec.to_yaml(), "spec.yaml")
    rng = random.Random(0)
    epochs = spec.train.epochs
    written = 0
    started = time.time()
    for cell in expand(dict(spec.sweep.grid)):
        depth, activation = int(cell.values["model.depth"]), str(cell.values["model.activation"])
        best_lr, best = 1e-3, float("inf")
        plan = [("tune", i) for i in range(trials)] + [("confirm", i) for i in range(seeds)]
        for phase, index in plan:
            lr = 10 ** rng.uniform(-4, -1) if phase == "tune" else best_lr
            seed = index if phase == "tune" else 1000 + index
            values = {**cell.values, "train.learning_rate": lr, "train.seed": seed}
            hist = _history(depth, activation, lr, rng.randrange(2**31), epochs)
            if phase == "tune" and hist["val_loss"][-1] < best:
                best, best_lr = hist["val_loss"][-1], lr
            tags = [RunTag("nnlab.phase", phase), RunTag("nnlab.cell", cell.id), RunTag("nnlab.sweep_id", sweep_id),
                    RunTag("nnlab.slot", f"{cell.id}/{phase}/{index}"), RunTag("nnlab.trial", str(index)),
                    RunTag("nnlab.status", "completed")]
            if phase == "confirm":
                tags.append(RunTag("nnlab.seed_index", str(index)))
            run = client.create_run(exp, run_name=f"{cell.id} {phase} {index}",
                                    tags={"mlflow.parentRunId": parent})
            params = [Param(k, "null" if v is None else str(v)) for k, v in spec.with_values(values).flat_params().items()]
            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, step) for k, series in hist.items() for step, v in enumerate(series)]
            finals = {"test_loss": hist["val_loss"][-1] * 1.05, "test_accuracy": hist["val_accuracy"][-1] - 0.01,
                      "best_val_loss": min(hist["val_loss"]), "epochs_trained": float(epochs), "n_params": 9000.0,
                      "train_seconds": 1.5, "gap_loss": hist["val_loss"][-1] - hist["loss"][-1],
                      "dead_units": 0.05, **{f"grad_norm/hidden_{i:02d}": 0.1 / (i if activation == "sigmoid" else 1)
                                             for i in range(1, depth + 1)}}
            metrics += [Metric(k, v, now, epochs - 1) for k, v in finals.items()]
            client.log_batch(run.info.run_id, metrics=metrics, params=params[:100], tags=tags)
            client.set_terminated(run.info.run_id, "FINISHED")
            written += 1
            if written % 500 == 0:
                print(f"  {written} runs ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    tracker.set_tags(parent, {"nnlab.status": "completed"})
    tracker.end_run(parent, "FINISHED")
    return {"runs": written}


def ensure_store(ctx: Ctx, trials: int, seeds: int) -> Path:
    runs = 10 * (trials + seeds)
    store = ctx.work / f"report-store-v{STORE_VERSION}-{runs}"
    if (store / "complete").exists():
        return store
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    ctx.log(f"goal 8: writing a store of {runs} runs (once; kept in {store})")
    run_child("bench._reports", "build", {"store": str(store), "trials": trials, "seeds": seeds},
              log_to=ctx.work / "logs" / "report-build.log")
    (store / "complete").write_text("ok\n")
    return store


def measure_report(ctx: Ctx) -> None:
    trials, seeds = (8, 2) if ctx.quick else (480, 20)
    store = ensure_store(ctx, trials, seeds)
    runs = 10 * (trials + seeds)
    out = ctx.work / "report-out"
    uri = f"sqlite:///{(store / 'mlflow.db').resolve()}"
    logs = ctx.work / "logs" / "report.log"
    spec_arg = str(REPORT_SPEC)
    if ctx.quick:
        tmp_spec = ctx.work / "report_study_quick.yaml"
        tmp_spec.write_text(REPORT_SPEC.read_text().replace("trials: 480", f"trials: {trials}")
                            .replace("seeds: 20", f"seeds: {seeds}"))
        spec_arg = str(tmp_spec)

    def report() -> float:
        shutil.rmtree(store / "cache", ignore_errors=True)  # cold: nothing cached from the last round
        shutil.rmtree(out, ignore_errors=True)
        seconds, _ = run_timed([NNLAB, "report", spec_arg, "--out", str(out), "--no-log"],
                               env=bench_env(NNLAB_STORE=str(store)), cwd=ctx.work, log_to=logs)
        return seconds

    counted: list[Any] = []

    def naive() -> float:
        seconds, stdout = run_timed([VENV_PYTHON, str(BASELINES / "naive_report.py"), uri, "bench_report"],
                                    env=bench_env(), cwd=ctx.work, log_to=logs)
        counted.append(child_result(stdout))
        return seconds

    repeats = min(ctx.repeats, 3)
    ctx.log(f"goal 8: nnlab report vs naive loop over {runs} runs, {repeats} rounds")
    s = alternate({"report": report, "naive": naive}, repeats, log=ctx.log)
    seconds = median(s["report"])
    ratio = paired_ratio(s, "report", "naive")
    found = counted[-1]["runs"] if counted else 0
    met = seconds <= 10 and ratio <= 0.2
    ctx.rows.append(Row("8", f"`nnlab report` over {runs} runs in the store", seconds,
                        f"{seconds:.1f} s; {ratio:.2f}x", "<= 10 s and <= 0.2x naive", met,
                        f"naive search_runs + get_metric_history loop {median(s['naive']):.1f} s over {found} runs; "
                        "report cold (history cache emptied each round), --no-log; median of "
                        f"{len(s['report'])}"))


if __name__ == "__main__":
    child_main({"build": child_build})
