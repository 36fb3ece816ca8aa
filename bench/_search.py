"""Goal 13: search quality at equal budget, against Keras Tuner's RandomSearch.

The search is goal 5's (``bench/specs/digits_search.yaml``: depth 1-4 x learning rate, 20 trials x 15
epochs on the digits, nnlab's defaults: TPE and median pruning, 2 workers), on nnlab's splits for both
tools. Round r seeds both searches and all their trainings with r; rounds alternate which tool runs
first. Per round:

- Keras Tuner's RandomSearch, 20 trials; its wall time W;
- ``nnlab sweep``, 20 trials (equal trials);
- ``nnlab sweep``, 3 x 20 trials, of which only the runs that ended within W of the command's start
  count (equal wall time: what a user who gave nnlab Keras Tuner's time would have found).

Each tool's score is the best trial's best-epoch val_loss, Keras Tuner's own score. That score is the
minimum over trials of a noisy number: with the settings fixed (depth 2, rate 3e-3), a trial's best
val_loss over training seeds 0-9 has a standard deviation of 0.016 in bare Keras and 0.022 in nnlab, so a search whose trials each draw new weights (Keras
Tuner's) gets that noise's luck in its minimum, and one whose trials share a seed (nnlab's tune
phase) does not. What a choice is worth without that luck is row 13c: each search's chosen depth
and learning rate trained again on five seeds neither search used (100-104), scored the same way,
the median of the five.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from bench._harness import (
    BASELINES,
    VENV_PYTHON,
    BenchError,
    Ctx,
    Row,
    bench_env,
    child_main,
    median,
    run_child,
)
from bench._sweeps import KT_DIR, SEARCH_SPEC, _script, _sweep, ensure_keras_tuner

FRESH_SEEDS = (100, 101, 102, 103, 104)
LONGER = 3  # the equal-time sweep asks for this many times the trials, and counts those done within W


def chosen(db: Path) -> dict[str, Any]:
    """The tuned values of the tune run with the lowest ``best_val_loss`` in a store."""
    query = """
        SELECT m.run_uuid FROM latest_metrics m
        JOIN tags t ON t.run_uuid = m.run_uuid AND t.key = 'nnlab.phase' AND t.value = 'tune'
        WHERE m.key = 'best_val_loss' ORDER BY m.value LIMIT 1
    """
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(query).fetchone()
        if row is None:
            raise BenchError(f"{db}: no tune run with a best_val_loss")
        params = dict(conn.execute("SELECT key, value FROM params WHERE run_uuid = ?", (row[0],)).fetchall())
    return {"model.depth": int(params["model.depth"]), "train.learning_rate": float(params["train.learning_rate"])}


def within(ended: list[tuple[float, float]], seconds: float) -> float | None:
    """The best val_loss among the runs that ended within ``seconds`` of the sweep's start."""
    done = [v for t, v in ended if t <= seconds]
    return min(done) if done else None


def measure_search(ctx: Ctx) -> None:
    if not ensure_keras_tuner(ctx):
        raise BenchError("keras-tuner could not be installed")
    rounds = 2 if ctx.quick else max(5, ctx.repeats)
    trials, epochs = (4, 3) if ctx.quick else (20, 15)
    data = ctx.work / "digits_split.npz"
    run_child("bench._sweeps", "export", {"path": str(data)})
    # each callable runs round r (its r-th call) with train.seed / --seed r, as goal 5's searches
    searches = {
        "nnlab": _sweep(ctx, "search_equal_trials", 2, "median", [f"sweep.trials={trials}", f"train.epochs={epochs}"]),
        "longer": _sweep(ctx, "search_equal_time", 2, "median",
                         [f"sweep.trials={LONGER * trials}", f"train.epochs={epochs}"]),
        "keras_tuner": _script(ctx, "search_keras_tuner", [VENV_PYTHON, str(BASELINES / "kt_random_search.py"),
                                                           str(data), "{dir}", "--trials", str(trials), "--epochs",
                                                           str(epochs), "--seed", "{seed}"],
                               bench_env(PYTHONPATH=str(KT_DIR))),
    }
    got: list[dict[str, Any]] = []
    for r in range(rounds):
        order = ["keras_tuner", "nnlab", "longer"] if r % 2 == 0 else ["nnlab", "keras_tuner", "longer"]
        one: dict[str, Any] = {name: searches[name]() for name in order}
        one["nnlab"]["chosen"] = chosen(Path(one["nnlab"]["db"]))
        one["equal_time"] = within(one["longer"]["ended"], one["keras_tuner"]["seconds"])
        ctx.log(f"  round {r + 1}/{rounds}: nnlab {one['nnlab']['best_val_loss']:.4f} in "
                f"{one['nnlab']['seconds']:.0f} s, Keras Tuner {one['keras_tuner']['best_val_loss']:.4f} in "
                f"{one['keras_tuner']['seconds']:.0f} s, nnlab in Keras Tuner's time {one['equal_time']}")
        got.append(one)
    configs = [g[tool]["chosen"] for g in got for tool in ("nnlab", "keras_tuner")]
    fresh = run_child("bench._search", "fresh", {"configs": configs, "epochs": epochs},
                      log_to=ctx.work / "logs" / "search-fresh.log")["scores"]
    for i, g in enumerate(got):
        g["nnlab"]["fresh"], g["keras_tuner"]["fresh"] = fresh[2 * i], fresh[2 * i + 1]
    _rows(ctx, got, trials)


def _pairs(got: list[dict[str, Any]], ours: Any, theirs: Any) -> str:
    return ", ".join(f"({ours(g):.4f}, {theirs(g):.4f})" if ours(g) is not None else f"(none, {theirs(g):.4f})"
                     for g in got)


def _rows(ctx: Ctx, got: list[dict[str, Any]], trials: int) -> None:
    n = len(got)
    ours = median([g["nnlab"]["best_val_loss"] for g in got])
    theirs = median([g["keras_tuner"]["best_val_loss"] for g in got])
    wins = sum(g["nnlab"]["best_val_loss"] <= g["keras_tuner"]["best_val_loss"] for g in got)
    ctx.rows.append(Row("13", f"search quality at equal trials ({trials}): best val_loss, nnlab vs Keras Tuner "
                              f"RandomSearch, median of {n} rounds", ours, f"{ours:.4f} vs {theirs:.4f}", "no worse",
                        ours <= theirs,
                        "each tool's own score (best epoch of the best trial); per round (nnlab, Keras Tuner): "
                        + _pairs(got, lambda g: g["nnlab"]["best_val_loss"], lambda g: g["keras_tuner"]["best_val_loss"])
                        + f"; nnlab no worse in {wins} of {n}; wall time nnlab "
                        f"{median([g['nnlab']['seconds'] for g in got]):.0f} s, Keras Tuner "
                        f"{median([g['keras_tuner']['seconds'] for g in got]):.0f} s"))
    timed = [g["equal_time"] for g in got if g["equal_time"] is not None]
    equal = median(timed) if len(timed) == n else float("nan")
    ctx.rows.append(Row("13b", "search quality at equal wall time: best val_loss of nnlab's runs that ended within "
                               "Keras Tuner's wall time vs Keras Tuner's, median of rounds", equal,
                        f"{equal:.4f} vs {theirs:.4f}", "better", len(timed) == n and equal < theirs,
                        f"nnlab asked for {LONGER * trials} trials and counts those that ended within Keras Tuner's "
                        f"wall time of that round; runs counted per round: "
                        + ", ".join(str(sum(t <= g["keras_tuner"]["seconds"] for t, _ in g["longer"]["ended"]))
                                    for g in got)
                        + "; per round (nnlab, Keras Tuner): "
                        + _pairs(got, lambda g: g["equal_time"], lambda g: g["keras_tuner"]["best_val_loss"])))
    ours_f = median([g["nnlab"]["fresh"] for g in got])
    theirs_f = median([g["keras_tuner"]["fresh"] for g in got])
    ctx.rows.append(Row("13c", "what the chosen settings are worth on fresh seeds: each search's choice at equal "
                               f"trials trained on seeds {FRESH_SEEDS[0]}-{FRESH_SEEDS[-1]}, median best val_loss, nnlab "
                               "vs Keras Tuner, median of rounds", ours_f, f"{ours_f:.4f} vs {theirs_f:.4f}", "no worse",
                        ours_f <= theirs_f,
                        "choices (depth, learning rate) per round, nnlab / Keras Tuner: "
                        + ", ".join(f"{g['nnlab']['chosen']['model.depth']}, {g['nnlab']['chosen']['train.learning_rate']:.2g}"
                                    f" / {g['keras_tuner']['chosen']['model.depth']}, "
                                    f"{g['keras_tuner']['chosen']['train.learning_rate']:.2g}" for g in got)
                        + "; fresh-seed scores (nnlab, Keras Tuner): "
                        + _pairs(got, lambda g: g["nnlab"]["fresh"], lambda g: g["keras_tuner"]["fresh"])))


def child_fresh(args: dict[str, Any]) -> dict[str, Any]:
    """Each config trained with nnlab's trainer on every fresh seed; the median best-epoch val_loss."""
    import statistics

    from nnlab.spec import Spec
    from nnlab.train import execute, prepare

    spec = Spec.from_yaml(str(SEARCH_SPEC)).with_values({"train.epochs": args["epochs"]})
    memo: dict[str, float] = {}
    scores = []
    for config in args["configs"]:
        key = json.dumps(config, sort_keys=True)
        if key not in memo:
            values = [execute(prepare(spec.with_values({**config, "train.seed": seed})), None,
                              figures=False).metrics["best_val_loss"] for seed in FRESH_SEEDS]
            memo[key] = float(statistics.median(values))
        scores.append(memo[key])
    return {"scores": scores}


if __name__ == "__main__":
    child_main({"fresh": child_fresh})
