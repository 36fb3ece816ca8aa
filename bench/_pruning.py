"""A lever for goal 4: pruner settings compared on the SAME trials, by replaying learning curves.

A real sweep's trials depend on what was pruned before (TPE learns from them), so two sweeps
never train the same trials. Here the trials are fixed instead: a child process trains N
configurations of the search space in full (random depth and learning rate, seeded) and keeps
their per-epoch val_loss; each pruner then replays those curves in order (``trial.report`` per
epoch, stop at the first ``should_prune``), which costs no training. The figures: epochs trained
relative to no pruning, and how much worse the best completed trial is than the best of all.

Settings replayed: nnlab's median default (``nnlab.sweep._pruners``: the median with a patience),
the previous one (the same median without the patience), the earlier ones (3 completed trials; 5
trials and a third of the epochs), other warm-ups, the 25th-percentile pruner and successive halving.
"""

from __future__ import annotations

import math
from typing import Any

from bench._harness import SPECS, Ctx, Lever, bench_env, child_main, median, run_child


def child_curves(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from nnlab.spec import Spec
    from nnlab.train import execute, prepare
    from nnlab.train._env import keras

    spec = Spec.from_yaml(str(SPECS / "digits_search.yaml"), [f"train.epochs={args['epochs']}"])
    rng = np.random.default_rng(int(args["seed"]))
    curves = []
    for _ in range(int(args["trials"])):
        values = {"model.depth": int(rng.integers(1, 5)), "train.learning_rate": float(10 ** rng.uniform(-4, -1))}
        result = execute(prepare(spec.with_values(values)), None, figures=False)
        curves.append(result.history.get("val_loss", []))
        keras().backend.clear_session()
    return {"curves": curves}


def pruners(trials: int, epochs: int) -> dict[str, Any]:
    import optuna

    from nnlab.sweep._pruners import build_pruner, patience, warmup

    startup, warm = warmup(trials, epochs)
    return {
        "none": optuna.pruners.NopPruner(),
        f"median ({startup} trials, epoch {warm}, patience {patience(epochs)}) = nnlab default": build_pruner(
            "median", trials, epochs),
        f"median ({startup} trials, epoch {warm}), no patience = previous default": optuna.pruners.MedianPruner(
            startup, warm),
        f"median ({min(3, trials // 2)} trials, epoch {warm}) = an earlier default": optuna.pruners.MedianPruner(
            min(3, trials // 2), warm),
        f"median ({min(5, trials // 2)} trials, epoch {epochs // 3}) = the first default": optuna.pruners.MedianPruner(
            min(5, trials // 2), epochs // 3),
        f"median ({startup} trials, epoch 1)": optuna.pruners.MedianPruner(startup, 1),
        f"median (5 trials, epoch {warm})": optuna.pruners.MedianPruner(5, warm),
        f"percentile 25 ({startup} trials, epoch {warm})": optuna.pruners.PercentilePruner(25.0, startup, warm),
        "successive halving (min 1 epoch, x3)": optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, epochs // 9), reduction_factor=3),
    }


def replay(curves: list[list[float]], pruner: Any) -> tuple[int, float]:
    """(epochs trained, best final val_loss of the completed trials) under ``pruner``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
    epochs, best = 0, math.inf
    for curve in curves:
        trial = study.ask()
        pruned = False
        for step, value in enumerate(curve, start=1):
            epochs += 1
            trial.report(value if math.isfinite(value) else 1e9, step)
            if step < len(curve) and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            final = curve[-1] if curve and math.isfinite(curve[-1]) else 1e9
            study.tell(trial, final)
            best = min(best, final)
    return epochs, best


def measure_pruning(ctx: Ctx) -> None:
    trials, epochs = (8, 4) if ctx.quick else (20, 15)
    sets = 1 if ctx.quick else 3
    ctx.log(f"goal 4 lever: pruner replay on {sets} fixed set(s) of {trials} fully trained trials x {epochs} epochs")
    results: dict[str, list[tuple[float, float]]] = {}
    for seed in range(sets):
        curves = run_child("bench._pruning", "curves", {"trials": trials, "epochs": epochs, "seed": seed},
                           env=bench_env(), log_to=ctx.work / "logs" / "pruning.log")["curves"]
        options = pruners(trials, epochs)
        full, best = replay(curves, options["none"])
        for name, pruner in options.items():
            if name == "none":
                continue
            used, found = replay(curves, pruner)
            results.setdefault(name, []).append((used / full, (found - best) / best))
    for name, pairs in results.items():
        ratio = median([p[0] for p in pairs])
        worse = median([p[1] for p in pairs])
        meets = ratio <= 0.5 and worse <= 0.01
        ctx.levers.append(Lever(f"pruner replay: {name}", f"epochs / no pruning; best objective vs best of all, "
                                f"{len(pairs)} trial set(s)", f"{ratio:.2f}x; {worse * 100:+.1f}%",
                                "meets goal 4's bar" if meets else "misses goal 4's bar",
                                "same trials for every pruner (random sampler, curves trained once)"))


if __name__ == "__main__":
    child_main({"curves": child_curves}, skip_teardown=True)
