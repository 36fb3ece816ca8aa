"""Per-cell statistics (``cells.csv``) and the runs that count as evidence.

Evidence is every finished confirm run (one per repeat at each cell's best tuned setting): completed,
diverged and failed alike. A diverged or failed run has no honest value of its own, so it is counted
against its cell (``IMPUTE_RULE``); dropping it would judge a cell where 2 of 3 repeats blew up on the
one that survived. Killed runs are not finished (a resumed sweep redoes them) and are left out. A study
without confirm runs (``seeds: 0``) falls back to the best tune run of each cell; a study of single runs
(``nnlab run``) uses those, with the same rule.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from analysis._labels import is_missing, py
from analysis._runs import PARAM
from analysis._stats import summarize

CONFIRM, SINGLE, BEST_TUNE = "confirm", "run", "best tune"
FINISHED = ("completed", "diverged", "failed")  # final outcomes; killed and running runs are redone
LOST = ("diverged", "failed")
IMPUTE_RULE = ("a diverged or failed run counts against its cell: at chance (1 / classes) for an accuracy, "
               "at the worst finite value any run of the study reached for every other metric (the highest "
               "for losses, errors and gaps, the lowest for scores; for a bound, the side that breaks it)")
# run facts, not outcomes: never imputed
BOOKKEEPING = ("chance_accuracy", "n_params", "epochs_trained", "train_seconds", "pretrain_layers_transferred")
OUTCOME = re.compile(r"^(val_|test_|train_eval_|gap_|best_|pretrain_)?(loss|accuracy|mae|mse)$")


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: accuracies in [0, 1], losses, errors, norms and unit fractions from 0,
    anything else (gaps, slopes, scores of unknown kind) unbounded."""
    name = metric.split("/")[0]
    if name.endswith("accuracy") and not name.startswith("gap_"):
        return 0.0, 1.0
    if name in ("dead_units", "saturated_units", "chance_accuracy"):
        return 0.0, 1.0
    if OUTCOME.match(name) or name in ("grad_norm", "train_seconds", "n_params", "epochs_trained") or \
            name.endswith("_ratio"):
        return 0.0, math.inf
    return -math.inf, math.inf


def within_range(summary: Any, metric: str) -> Any:
    """A summary whose interval is cut to the metric's possible range: the true mean lies in that range,
    so cutting loses no coverage, and a loss interval no longer reaches below zero."""
    import dataclasses

    lo, hi = metric_range(metric)
    if not (math.isfinite(summary.ci_low) and math.isfinite(summary.ci_high)):
        return summary
    return dataclasses.replace(summary, ci_low=min(max(summary.ci_low, lo), hi),
                               ci_high=max(min(summary.ci_high, hi), lo))


def worse_is_higher(metric: str) -> bool:
    """Which way a metric gets worse: gaps, losses, errors and ratios up; accuracies and scores down."""
    from nnlab.spec import higher_is_better

    if metric.startswith("gap_") or metric.endswith("_ratio"):
        return True
    return not higher_is_better(metric)


def impute(frame: pd.DataFrame, study_runs: pd.DataFrame, metric: str, worse_high: bool | None = None) -> pd.Series:
    """``frame[metric]`` with its diverged and failed runs set by ``IMPUTE_RULE`` (a copy; NaN when the
    study has no finite value of the metric to fall back on)."""
    if metric not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    values = frame[metric].astype(float).copy()
    lost = frame["status"].isin(LOST) if "status" in frame.columns else pd.Series(False, index=frame.index)
    if not lost.any():
        return values
    worse_high = worse_is_higher(metric) if worse_high is None else worse_high
    seen = study_runs[metric].astype(float) if metric in study_runs.columns else pd.Series([], dtype=float)
    seen = seen[np.isfinite(seen)]
    worst = (float(seen.max()) if worse_high else float(seen.min())) if len(seen) else float("nan")
    fill = pd.Series(worst, index=frame.index, dtype=float)
    if metric.endswith("accuracy") and not metric.startswith("gap_") and not worse_high:
        if "chance_accuracy" in frame.columns:
            chance = frame["chance_accuracy"].astype(float)
            fill = chance.where(np.isfinite(chance), fill)
    values[lost] = fill[lost]
    return values

def objective_info(spec: Any) -> tuple[str, bool]:
    """The sweep's objective and whether higher is better."""
    return spec.sweep.objective, spec.sweep.resolved_direction == "maximize"


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "completed"]


def best_per_cell(runs: pd.DataFrame, metric: str, maximize: bool) -> pd.DataFrame:
    """The best completed run of each cell by ``metric``."""
    done = completed(runs)
    if metric not in done.columns:
        return done.iloc[0:0]
    done = done[np.isfinite(done[metric].astype(float))]
    if done.empty:
        return done
    order = done.sort_values(metric, ascending=not maximize, kind="stable")
    return order.groupby("cell", sort=False).head(1)


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"].isin(FINISHED)]


def raw_evidence(runs: pd.DataFrame, spec: Any) -> tuple[pd.DataFrame, str]:
    """(the evidence runs as logged, diverged and failed ones included; which kind they are)."""
    if (runs["phase"] == "confirm").any():
        return finished(runs[runs["phase"] == "confirm"]), CONFIRM
    if (runs["phase"] == "run").any():
        return finished(runs[runs["phase"] == "run"]), SINGLE
    objective, maximize = objective_info(spec)
    return best_per_cell(runs[runs["phase"] == "tune"], objective, maximize), BEST_TUNE


def evidence(runs: pd.DataFrame, spec: Any) -> tuple[pd.DataFrame, str]:
    """(the runs claims and cell statistics use, which kind they are): ``raw_evidence`` with every
    outcome metric of its diverged and failed runs imputed by ``IMPUTE_RULE``."""
    ev, basis = raw_evidence(runs, spec)
    if ev.empty or not ev["status"].isin(LOST).any():
        return ev, basis
    ev = ev.copy()
    for metric in ev.columns:
        if OUTCOME.match(str(metric)) and metric not in BOOKKEEPING:
            ev[metric] = impute(ev, runs, metric)
    return ev, basis


LOG_KEYS = ("train.learning_rate", "model.l1", "model.l2", "train.weight_decay", "data.train_size",
            "train.batch_size", "model.width")


def wants_log(spec: Any, key: str, values: Any) -> bool:
    """Whether ``key`` reads best on a log axis: a tuned range says so itself; rates, penalties and
    sizes when their values span half a decade; anything else when it spans more than a decade."""
    from analysis._labels import spans_decades

    param = spec.sweep.tune.get(key) if spec is not None else None
    if param is not None and hasattr(param, "log"):
        return bool(param.log)
    return spans_decades(list(values), 0.5 if key in LOG_KEYS else 1.0)


def log_keys(spec: Any, runs: pd.DataFrame) -> list[str]:
    """The grid and tune keys to draw on log axes, judged on the values the runs used."""
    out = []
    for key in [*grid_keys(spec), *tune_keys(spec)]:
        col = PARAM + key
        values = [py(v) for v in runs[col]] if col in runs.columns else list(spec.sweep.grid.get(key, []))
        if wants_log(spec, key, values):
            out.append(key)
    return out


def grid_keys(spec: Any) -> list[str]:
    return list(spec.sweep.grid)


def tune_keys(spec: Any) -> list[str]:
    return list(spec.sweep.tune)


def cell_values(runs: pd.DataFrame, keys: list[str]) -> dict[str, dict[str, Any]]:
    """cell id -> {grid key: value} read from the runs' params."""
    out: dict[str, dict[str, Any]] = {}
    cols = [PARAM + k for k in keys]
    present = [c for c in cols if c in runs.columns]
    for cell, group in runs.groupby("cell", sort=False):
        first = group.iloc[0]
        out[str(cell)] = {c[len(PARAM):]: py(first[c]) for c in present}
    return out


def key_metrics(runs: pd.DataFrame, objective: str, claimed: list[str] | None = None) -> list[str]:
    """The objective first, then validation, test and gap metrics, then those the claims name, as far
    as the runs have them."""
    wanted = [objective, "val_loss", "val_accuracy", "val_mae", "test_loss", "test_accuracy", "test_mae",
              "gap_loss", "gap_accuracy", *(claimed or [])]
    return [m for m in dict.fromkeys(wanted) if m in runs.columns]


def cell_table(runs: pd.DataFrame, spec: Any, study: str = "") -> pd.DataFrame:
    """One row per cell: grid values, run counts, mean/std/95% CI of key metrics over the evidence runs,
    and the best tuned values of each tune key."""
    objective, maximize = objective_info(spec)
    keys = grid_keys(spec)
    ev, basis = evidence(runs, spec)
    values = cell_values(runs, keys)
    metrics = key_metrics(runs, objective, [claim.metric for claim in spec.expect])
    best_tune = best_per_cell(runs[runs["phase"] == "tune"], objective, maximize).set_index("cell")
    rows = []
    for cell, group in runs.groupby("cell", sort=False):
        cell = str(cell)
        row: dict[str, Any] = {"study": study, "cell": cell}
        for key in keys:
            row[key] = values.get(cell, {}).get(key)
        counts = group["status"].value_counts()
        row["n_runs"] = len(group)
        for status in ("completed", "diverged", "pruned", "failed", "killed"):
            row[f"n_{status}"] = int(counts.get(status, 0))
        row["basis"] = basis
        sample = ev[ev["cell"] == cell]
        row["n"] = len(sample)
        for status in FINISHED:  # the evidence runs behind the statistics, lost ones counted (IMPUTE_RULE)
            row[f"evidence_{status}"] = int((sample["status"] == status).sum()) if "status" in sample else 0
        for metric in metrics:
            s = within_range(summarize(sample[metric].astype(float).to_numpy()) if metric in sample else
                             summarize([]), metric)
            row[f"{metric}_mean"] = s.mean
            row[f"{metric}_std"] = s.std
            row[f"{metric}_ci_low"] = s.ci_low
            row[f"{metric}_ci_high"] = s.ci_high
        if cell in best_tune.index:
            best = best_tune.loc[cell]
            row[f"best_tune_{objective}"] = float(best[objective])
            for key in tune_keys(spec):
                row[f"best_tune:{key}"] = py(best.get(PARAM + key))
        rows.append(row)
    return pd.DataFrame(rows)  # cells in grid order: the runs are sorted by the grid


def best_cell(table: pd.DataFrame, spec: Any) -> str | None:
    objective, maximize = objective_info(spec)
    col = f"{objective}_mean"
    if table.empty or col not in table or table[col].isna().all():
        return None
    idx = table[col].idxmax() if maximize else table[col].idxmin()
    return str(table.loc[idx, "cell"])


STAT_COLUMNS = ["key", "value", "series", "mean", "std", "ci_low", "ci_high", "n"]


def stat_by(runs: pd.DataFrame, x_key: str, metric: str, series_keys: list[str]) -> pd.DataFrame:
    """Mean, std and 95% CI of ``metric`` for each value of ``x_key`` within each series (the
    combination of ``series_keys`` values): columns STAT_COLUMNS, and ``values`` (every run's value, for
    drawing each repeat beside the mean)."""
    from analysis._labels import series_label

    col = PARAM + x_key
    if runs.empty or col not in runs.columns or metric not in runs.columns:
        return pd.DataFrame({c: [] for c in [*STAT_COLUMNS, "values"]})
    groups: dict[tuple[str, Any], list[float]] = {}
    xs: dict[tuple[str, Any], Any] = {}
    series_cols = [PARAM + k for k in series_keys if PARAM + k in runs.columns]
    for _, row in runs.iterrows():
        value = None if is_missing(row[col]) else py(row[col])
        label = series_label({c[len(PARAM):]: py(row[c]) for c in series_cols})
        gid = (label, repr(value))
        groups.setdefault(gid, []).append(float(row[metric]))
        xs[gid] = value
    rows = []
    for gid, values in groups.items():
        s = within_range(summarize(values), metric)
        rows.append({"key": x_key, "value": xs[gid], "series": gid[0], "mean": s.mean, "std": s.std,
                     "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n, "values": [float(v) for v in values]})
    return pd.DataFrame(rows, columns=[*STAT_COLUMNS, "values"])
