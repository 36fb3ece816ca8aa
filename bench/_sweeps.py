"""Goals 3, 4 and 5: whole sweeps, timed from start to exit, each into a fresh store.

One rotation holds every sweep-sized variant, so all of them see the same machine:

- ``nnlab sweep bench/specs/digits_search.yaml`` with 1 worker and with 2, pruning off (goal 3:
  the same trials and epochs, so the wall-time ratio is the throughput ratio),
- with 2 workers started as fresh interpreters (``NNLAB_WORKER_START=spawn``) instead of forked from
  multiprocessing's forkserver, pruning off, and the same with the home-made fork server those
  workers came from before (commit ``PREVIOUS``, its ``nnlab`` package exported from git),
- with 2 workers and median pruning, the spec as written (goals 4 and 5),
- Keras Tuner's RandomSearch (goal 5's baseline) and a hand-written Optuna + MLflow script (the
  issue's second reference), on the same splits (exported from nnlab's loader to an .npz).

Before them, goal 3's ceiling (``bench._ceiling``): two bare Keras processes against one; after
them, a short sweep with ``--recycle 1`` forked, spawned and forked by the previous fork server (what a
recycled worker costs).

Epochs and objectives are read back from the store's SQLite file with the standard library.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench._ceiling import measure_ceiling
from bench._harness import (
    BASELINES,
    SPECS,
    VENV_PYTHON,
    WORK,
    BenchError,
    Ctx,
    Lever,
    Row,
    alternate,
    bench_env,
    child_main,
    child_result,
    median,
    run_child,
    run_timed,
)

SEARCH_SPEC = SPECS / "digits_search.yaml"
NNLAB = str(Path(VENV_PYTHON).parent / "nnlab")
KT_DIR = WORK / "kt"


def ensure_keras_tuner(ctx: Ctx) -> bool:
    """Keras Tuner in its own folder (never in the project's environment); keras and tensorflow come
    from the project's environment, hence --no-deps."""
    if (KT_DIR / "keras_tuner").exists() and (KT_DIR / "tensorboard").exists():
        return True
    ctx.log("installing keras-tuner into bench/.work/kt (its own environment)")
    try:
        run_timed([VENV_PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(KT_DIR),
                   "keras-tuner", "kt-legacy", "tensorboard"], timeout=600)  # its tuner imports tensorboard
    except (BenchError, OSError) as exc:
        ctx.notes.append(f"keras-tuner could not be installed ({exc}); goal 5 not measured")
        return False
    return (KT_DIR / "keras_tuner").exists()


def child_export(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from nnlab.data import load_dataset
    from nnlab.spec import Spec

    data = load_dataset(Spec.from_yaml(str(SEARCH_SPEC)).data)
    np.savez(args["path"], x_train=data.x_train, y_train=data.y_train, x_val=data.x_val, y_val=data.y_val)
    return {"train": len(data.x_train), "val": len(data.x_val)}


def tune_runs(db: Path) -> list[dict[str, Any]]:
    """Status, epochs, final and best-epoch val_loss, start and end of every tune run in a store."""
    query = """
        SELECT r.run_uuid, r.start_time, r.end_time,
               (SELECT value FROM tags WHERE run_uuid = r.run_uuid AND key = 'nnlab.status'),
               (SELECT value FROM latest_metrics WHERE run_uuid = r.run_uuid AND key = 'epochs_trained'),
               (SELECT value FROM latest_metrics WHERE run_uuid = r.run_uuid AND key = 'val_loss'),
               (SELECT value FROM latest_metrics WHERE run_uuid = r.run_uuid AND key = 'best_val_loss')
        FROM runs r JOIN tags p ON p.run_uuid = r.run_uuid AND p.key = 'nnlab.phase' AND p.value = 'tune'
    """
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(query).fetchall()
    keys = ("run_id", "start", "end", "status", "epochs", "val_loss", "best_val_loss")
    return [dict(zip(keys, row, strict=True)) for row in rows]


PREVIOUS = "03b2b5a"  # the last commit whose workers came from nnlab's own fork server (nnlab/sweep/_forks.py)


def previous_nnlab(ctx: Ctx) -> Path | None:
    """The ``nnlab`` and ``analysis`` packages of commit ``PREVIOUS``, exported from git into the scratch
    folder (None outside a git checkout that has it): put first on PYTHONPATH, they run in place of these."""
    import subprocess

    folder = ctx.work / f"nnlab-{PREVIOUS}"
    if (folder / "nnlab" / "sweep" / "_forks.py").is_file() and (folder / "analysis").is_dir():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(Path(__file__).resolve().parents[1]), "archive", PREVIOUS, "nnlab", "analysis"],
                             capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _sweep(ctx: Ctx, name: str, workers: int, pruner: str, overrides: list[str], start: str = "forkserver",
           extra: tuple[str, ...] = (), code: Path | None = None) -> Any:
    """``start``: how the workers start (``NNLAB_WORKER_START``); ``extra``: more command-line flags;
    ``code``: a folder whose ``nnlab`` package runs instead of this one."""
    rounds = itertools.count()  # round r runs with train.seed=r: every variant of a round, the same trials

    def run() -> dict[str, Any]:
        seed = next(rounds)
        store = ctx.work / "sweeps" / name
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)
        began = time.time()
        seconds, _ = run_timed([NNLAB, "sweep", str(SEARCH_SPEC), *overrides, f"sweep.pruner={pruner}",
                                f"train.seed={seed}",
                                "--workers", str(workers), "--progress", "lines", *extra],
                               env=bench_env(NNLAB_STORE=str(store), NNLAB_WORKER_START=start,
                                             PYTHONPATH=str(code) if code else None), cwd=store,
                               log_to=ctx.work / "logs" / f"sweep-{name}.log")
        runs = tune_runs(store / "mlflow.db")
        done = [r for r in runs if r["status"] == "completed" and r["val_loss"] is not None]
        if not done:
            raise BenchError(f"sweep {name}: no completed trial")
        starts = [r["start"] for r in runs if r["start"]]
        ends = [r["end"] for r in runs if r["end"]]
        busy = (max(ends) - min(starts)) / 1000 if starts and ends else seconds
        startup = min(starts) / 1000 - began if starts else 0.0  # command start to the first run's start
        scored = [r for r in runs if r["best_val_loss"] is not None]
        return {"seconds": seconds, "runs": len(runs), "epochs": sum(int(r["epochs"] or 0) for r in runs),
                "pruned": sum(r["status"] == "pruned" for r in runs),
                "best_final": min(r["val_loss"] for r in done),
                "best_val_loss": min(r["best_val_loss"] for r in scored),
                "busy_seconds": busy, "startup_seconds": startup,
                # (seconds from the command's start to a run's end, its best_val_loss): goal 13's equal time
                "ended": sorted((r["end"] / 1000 - began, r["best_val_loss"]) for r in scored if r["end"]),
                "db": str(store / "mlflow.db")}
    return run


def _script(ctx: Ctx, name: str, cmd: list[str], env: dict[str, str]) -> Any:
    rounds = itertools.count()

    def run() -> dict[str, Any]:
        folder = ctx.work / "sweeps" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        seed = str(next(rounds))  # round r: the script's search and trainings seeded r, as nnlab's
        full = [c.replace("{dir}", str(folder)).replace("{seed}", seed) for c in cmd]
        seconds, out = run_timed(full, env=env, cwd=folder, log_to=ctx.work / "logs" / f"sweep-{name}.log")
        return {"seconds": seconds, **child_result(out)}
    return run


def measure_sweeps(ctx: Ctx) -> None:
    from nnlab.sweep._pruners import describe_pruner

    trials, epochs = (4, 3) if ctx.quick else (20, 15)
    overrides = [f"sweep.trials={trials}", f"train.epochs={epochs}"]
    repeats = min(ctx.repeats, 3)
    data = ctx.work / "digits_split.npz"
    run_child("bench._sweeps", "export", {"path": str(data)})
    ceiling = measure_ceiling(ctx, str(data), 2 if ctx.quick else 4, epochs)
    variants: dict[str, Any] = {
        "w1_off": _sweep(ctx, "w1_off", 1, "none", overrides),
        "w2_off": _sweep(ctx, "w2_off", 2, "none", overrides),
        "w2_off_spawn": _sweep(ctx, "w2_off_spawn", 2, "none", overrides, start="spawn"),
        "w2_median": _sweep(ctx, "w2_median", 2, "median", overrides),
    }
    previous = previous_nnlab(ctx)
    if previous is not None:
        variants["w2_off_previous"] = _sweep(ctx, "w2_off_previous", 2, "none", overrides, start="fork", code=previous)
    have_kt = ensure_keras_tuner(ctx)
    budget = ["--trials", str(trials), "--epochs", str(epochs)]
    if have_kt:
        variants["keras_tuner"] = _script(ctx, "keras_tuner", [VENV_PYTHON, str(BASELINES / "kt_random_search.py"),
                                                               str(data), "{dir}", *budget, "--seed", "{seed}"],
                                          bench_env(PYTHONPATH=str(KT_DIR)))
    variants["optuna_script"] = _script(ctx, "optuna_script", [VENV_PYTHON, str(BASELINES / "optuna_mlflow.py"),
                                                               str(data), "sqlite:///{dir}/mlflow.db", *budget],
                                        bench_env())
    ctx.log(f"goals 3-5: {trials} trials x {epochs} epochs; {repeats} rounds of {len(variants)} searches")
    s = alternate(variants, repeats, log=ctx.log)

    def per_round(fn: Any, a: str, b: str) -> float:
        return median([fn(x, y) for x, y in zip(s[a], s[b], strict=False)])

    speedup = per_round(lambda one, two: one["seconds"] / two["seconds"], "w1_off", "w2_off")
    steady = per_round(lambda one, two: (one["runs"] / one["busy_seconds"]) / (two["runs"] / two["busy_seconds"]),
                       "w2_off", "w1_off")
    ctx.rows.append(Row("3", "sweep throughput, 2 workers / 1 worker, 2 cores", speedup, f"{speedup:.2f}x", ">= 1.7x",
                        speedup >= 1.7,
                        f"whole `nnlab sweep` wall time, {trials} trials x {epochs} epochs, pruning off, median of "
                        f"{len(s['w1_off'])}; 1 worker {median([r['seconds'] for r in s['w1_off']]):.1f} s, 2 workers "
                        f"{median([r['seconds'] for r in s['w2_off']]):.1f} s; steady state (first run start to last "
                        f"run end) {steady:.2f}x; start-up before the first run: 1 worker "
                        f"{median([r['startup_seconds'] for r in s['w1_off']]):.1f} s, 2 workers "
                        f"{median([r['startup_seconds'] for r in s['w2_off']]):.1f} s; this machine's ceiling "
                        f"{ceiling['ratio']:.2f}x (row 3b)"))
    ctx.rows.append(Row("3b", "reference: two bare Keras processes side by side / one, training throughput, 2 cores",
                        ceiling["ratio"], f"{ceiling['ratio']:.2f}x", "(ceiling of goal 3)", None,
                        f"the same fits with nothing else to do: {2 if ctx.quick else 4} MLPs x {epochs} epochs per "
                        f"process after a warm-up, started together; one process (2 threads) "
                        f"{ceiling['one']:.1f} s, two (1 thread each) {ceiling['two']:.1f} s; 2 x one / two, median "
                        f"of {min(ctx.repeats, 3)}"))
    forked = per_round(lambda spawn, fork: spawn["seconds"] / fork["seconds"], "w2_off_spawn", "w2_off")
    ctx.levers.append(Lever("workers forked from multiprocessing's forkserver that imported TensorFlow, MLflow and "
                            "Optuna once, vs fresh interpreters", "2-worker sweep, spawn / forkserver",
                            f"{forked:.2f}x", "kept",
                            f"start-up before the first run: forkserver "
                            f"{median([r['startup_seconds'] for r in s['w2_off']]):.1f} s, spawn "
                            f"{median([r['startup_seconds'] for r in s['w2_off_spawn']]):.1f} s"))
    if s.get("w2_off_previous"):
        before = per_round(lambda prev, now: prev["seconds"] / now["seconds"], "w2_off_previous", "w2_off")
        ctx.levers.append(Lever(f"multiprocessing's forkserver vs nnlab's own fork server (commit {PREVIOUS})",
                                "2-worker sweep, previous / now", f"{before:.2f}x",
                                "replaced (the standard library's, 336 fewer lines)",
                                f"whole sweep: previous {median([r['seconds'] for r in s['w2_off_previous']]):.1f} s, "
                                f"now {median([r['seconds'] for r in s['w2_off']]):.1f} s; start-up before the first "
                                f"run: previous {median([r['startup_seconds'] for r in s['w2_off_previous']]):.1f} s, "
                                f"now {median([r['startup_seconds'] for r in s['w2_off']]):.1f} s"))
    epochs_ratio = per_round(lambda on, off: on["epochs"] / off["epochs"], "w2_median", "w2_off")
    objective = per_round(lambda on, off: (on["best_final"] - off["best_final"]) / off["best_final"], "w2_median",
                          "w2_off")
    ctx.rows.append(Row("4", "pruning on / off, same study: epochs trained", epochs_ratio, f"{epochs_ratio:.2f}x",
                        "<= 0.5x", epochs_ratio <= 0.5,
                        f"median pruner ({describe_pruner('median', trials, epochs)}, nnlab's default); epochs {median([r['epochs'] for r in s['w2_median']]):.0f} vs "
                        f"{median([r['epochs'] for r in s['w2_off']]):.0f}; pruned trials "
                        f"{median([r['pruned'] for r in s['w2_median']]):.0f}/{trials}"))
    ctx.rows.append(Row("4b", "pruning on / off: best objective (final val_loss), relative change", objective * 100,
                        f"{objective * 100:+.1f}%", "within 1%", abs(objective) <= 0.01 or objective < 0,
                        f"best val_loss on {median([r['best_final'] for r in s['w2_median']]):.4f}, off "
                        f"{median([r['best_final'] for r in s['w2_off']]):.4f} (a lower value is better, not a miss)"))
    if have_kt and s.get("keras_tuner"):
        wall = per_round(lambda n, k: n["seconds"] / k["seconds"], "w2_median", "keras_tuner")
        ours = median([r["best_val_loss"] for r in s["w2_median"]])
        theirs = median([r["best_val_loss"] for r in s["keras_tuner"]])
        ctx.rows.append(Row("5", "the 20-trial search: nnlab sweep (2 workers, TPE + median pruning) / Keras Tuner "
                                 "RandomSearch, wall time", wall, f"{wall:.2f}x", "<= 0.5x", wall <= 0.5,
                            f"nnlab {median([r['seconds'] for r in s['w2_median']]):.1f} s (of which start-up "
                            f"{median([r['startup_seconds'] for r in s['w2_median']]):.1f} s), Keras Tuner "
                            f"{median([r['seconds'] for r in s['keras_tuner']]):.1f} s, median of "
                            f"{len(s['keras_tuner'])}"))
        pairs = [(n["best_val_loss"], k["best_val_loss"]) for n, k in zip(s["w2_median"], s["keras_tuner"],
                                                                           strict=False)]
        wins = sum(n <= k for n, k in pairs)
        ctx.rows.append(Row("5b", "best val_loss (best epoch of the best trial, Keras Tuner's score): nnlab vs "
                                  "Keras Tuner, median over rounds", ours, f"{ours:.4f} vs {theirs:.4f}", "no worse",
                            ours <= theirs,
                            "round r: both searches and all their trainings seeded r; per round (nnlab, Keras Tuner): "
                            + ", ".join(f"({n:.4f}, {k:.4f})" for n, k in pairs)
                            + f"; nnlab no worse in {wins} of {len(pairs)}"))
    script = per_round(lambda n, o: n["seconds"] / o["seconds"], "w2_median", "optuna_script")
    ctx.rows.append(Row("5c", "same search: nnlab sweep / hand-written Optuna + MLflow script (reference)", script,
                        f"{script:.2f}x", "(beat it)", script < 1.0,
                        f"script {median([r['seconds'] for r in s['optuna_script']]):.1f} s, best val_loss "
                        f"{median([r['best_val_loss'] for r in s['optuna_script']]):.4f}; one process, 2 threads"))
    ctx.levers.append(Lever("worker processes (one per core, threads split)", "1 worker x 2 threads / 2 x 1",
                            f"{speedup:.2f}x", "kept", "see goal 3"))
    _recycling(ctx)
    ctx.levers.append(Lever("median pruning with nnlab's warm-up and patience", "epochs on / off",
                            f"{epochs_ratio:.2f}x", "kept; the patience trades epochs for the best trial (goal 13)",
                            ""))


def _recycling(ctx: Ctx) -> None:
    """Workers replaced after every run (``--recycle 1``): what a recycled worker's start costs."""
    trials = 4 if ctx.quick else 8
    overrides = [f"sweep.trials={trials}", "train.epochs=3"]
    variants = {start: _sweep(ctx, f"recycle_{start}", 2, "none", overrides, start=start, extra=("--recycle", "1"))
                for start in ("forkserver", "spawn")}
    previous = previous_nnlab(ctx)
    if previous is not None:
        variants["previous"] = _sweep(ctx, "recycle_previous", 2, "none", overrides, start="fork",
                                      extra=("--recycle", "1"), code=previous)
    s = alternate(variants, min(ctx.repeats, 3), log=ctx.log)
    fork = s["forkserver"]
    ratio = median([sp["seconds"] / fo["seconds"] for fo, sp in zip(fork, s["spawn"], strict=False)])
    ctx.levers.append(Lever("recycled workers forked instead of spawned", f"{trials} runs x 3 epochs, 2 workers, "
                            "--recycle 1, spawn / forkserver", f"{ratio:.2f}x", "kept",
                            f"forkserver {median([r['seconds'] for r in fork]):.1f} s, spawn "
                            f"{median([r['seconds'] for r in s['spawn']]):.1f} s (a new worker for every run)"))
    if s.get("previous"):
        before = median([p["seconds"] / f["seconds"] for f, p in zip(fork, s["previous"], strict=False)])
        ctx.levers.append(Lever(f"recycled workers: multiprocessing's forkserver vs nnlab's own fork server "
                                f"(commit {PREVIOUS})", f"{trials} runs x 3 epochs, 2 workers, --recycle 1, "
                                "previous / now", f"{before:.2f}x", "replaced",
                                f"previous {median([r['seconds'] for r in s['previous']]):.1f} s, now "
                                f"{median([r['seconds'] for r in fork]):.1f} s"))


if __name__ == "__main__":
    child_main({"export": child_export})
