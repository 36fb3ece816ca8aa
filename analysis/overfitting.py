"""Overfitting: train against validation curves, the final train-validation gap against the training-set
size and against each regularizer, and what label noise does.

Frames (``compute``); gaps are ``gap_loss`` (validation loss - training loss) and ``gap_accuracy``
(training accuracy - validation accuracy), so a larger gap is more overfitting:

- ``curves``: per-epoch training and validation loss of one representative run (median objective) per
  value of ``data.train_size`` (or of the first grid key) in the best cell's series.
- ``gap_size``: gap mean and 95% CI against ``data.train_size`` (grid) or per run (tuned).
- ``gap_regularizers``: the same against dropout, l1, l2, weight decay, early stopping, augmentation.
- ``label_noise``: final training, validation and test accuracy against ``data.label_noise``.
- ``gap_cells``: the gap per cell (drawn when no size or regularizer is varied).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis import Figure, HistoryFn, register
from analysis._cells import (
    STAT_COLUMNS,
    best_cell,
    cell_table,
    cell_values,
    completed,
    evidence,
    grid_keys,
    log_keys,
    objective_info,
    stat_by,
    tune_keys,
)
from analysis._labels import (
    empty_frame,
    is_missing,
    key_label,
    metric_label,
    py,
    series_label,
    short_key,
    value_label,
)
from analysis._plots import (
    COLORS,
    apply_axis,
    axis_for,
    epoch_axis,
    errorbar_series,
    new_figure,
    plain_log_ticks,
    style,
    to_png,
)
from analysis._runs import PARAM, mask_where

SIZE = "data.train_size"
NOISE = "data.label_noise"
REGULARIZERS = ("model.dropout", "model.l2", "model.l1", "train.weight_decay", "train.early_stopping",
                "data.augment")
GAPS = ("gap_loss", "gap_accuracy", "gap_mae")
MAX_CURVES = 5


def _gap_metrics(runs: pd.DataFrame) -> list[str]:
    return [g for g in GAPS if g in runs.columns and runs[g].notna().any()]


def compute(runs: pd.DataFrame, spec: Any, history: HistoryFn | None = None) -> dict[str, pd.DataFrame]:
    objective, maximize = objective_info(spec)
    ev, basis = evidence(runs, spec)
    frames = {
        "curves": curves(runs, spec, history),
        "gap_size": gap_against(runs, ev, spec, [SIZE]),
        "gap_regularizers": gap_against(runs, ev, spec, list(REGULARIZERS)),
        "label_noise": label_noise(runs, ev, spec),
        "gap_cells": gap_cells(runs, spec),
    }
    logs = log_keys(spec, runs)
    for frame in frames.values():
        frame.attrs.update(objective=objective, maximize=maximize, basis=basis, study=spec.name, log_keys=logs)
    return frames


def gap_against(runs: pd.DataFrame, ev: pd.DataFrame, spec: Any, keys: list[str]) -> pd.DataFrame:
    """Gap statistics against each of ``keys`` that the sweep varies: grid keys over the evidence runs
    (mean, CI), tuned keys per completed tune run (``n`` = 1)."""
    cols = ["metric", "kind", *STAT_COLUMNS, "values"]
    grid, tune = grid_keys(spec), tune_keys(spec)
    parts = []
    for key in keys:
        if key in grid and len(spec.sweep.grid[key]) > 1:
            for gap in _gap_metrics(ev):
                part = stat_by(ev, key, gap, [k for k in grid if k != key])
                part.insert(0, "kind", "grid")
                part.insert(0, "metric", gap)
                parts.append(part)
        elif key in tune:
            done = completed(runs[runs["phase"] == "tune"])
            if PARAM + key not in done.columns:
                continue
            for gap in _gap_metrics(done):
                sub = done[done[gap].notna()]
                parts.append(pd.DataFrame({
                    "metric": gap, "kind": "tune", "key": key,
                    "value": [None if is_missing(v) else py(v) for v in sub[PARAM + key]],
                    "series": "tune runs", "mean": sub[gap].astype(float).to_numpy(), "std": math.nan,
                    "ci_low": math.nan, "ci_high": math.nan, "n": 1, "values": [[] for _ in range(len(sub))]}))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True)[cols] if parts else empty_frame(cols)


def label_noise(runs: pd.DataFrame, ev: pd.DataFrame, spec: Any) -> pd.DataFrame:
    cols = ["metric", *STAT_COLUMNS, "values"]
    if NOISE not in spec.sweep.grid or len(spec.sweep.grid[NOISE]) < 2:
        return empty_frame(cols)
    parts = []
    for metric in ("accuracy", "val_accuracy", "test_accuracy", "loss", "val_loss"):
        if metric in ev.columns and ev[metric].notna().any():
            part = stat_by(ev, NOISE, metric, [k for k in grid_keys(spec) if k != NOISE])
            part.insert(0, "metric", metric)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)[cols] if parts else empty_frame(cols)


def gap_cells(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    table = cell_table(runs, spec)
    cols = ["cell", "label", "metric", "mean", "ci_low", "ci_high", "n"]
    if table.empty:
        return empty_frame(cols)
    labels = {c: series_label(v) for c, v in cell_values(runs, grid_keys(spec)).items()}
    rows = []
    for gap in GAPS:
        if f"{gap}_mean" not in table:
            continue
        for _, row in table.iterrows():
            rows.append({"cell": row["cell"], "label": labels.get(row["cell"], row["cell"]), "metric": gap,
                         "mean": row[f"{gap}_mean"], "ci_low": row[f"{gap}_ci_low"],
                         "ci_high": row[f"{gap}_ci_high"], "n": row["n"]})
    frame = pd.DataFrame(rows, columns=cols)
    return frame[frame["mean"].notna()].reset_index(drop=True)


def curves(runs: pd.DataFrame, spec: Any, history: HistoryFn | None) -> pd.DataFrame:
    """One run per value of the size key (or the first grid key), in the best cell's series."""
    objective, maximize = objective_info(spec)
    cols = ["label", "value", "run_id", "key", "step", "value_y"]
    if history is None:
        return empty_frame(cols)
    grid = grid_keys(spec)
    key = SIZE if SIZE in grid else (grid[0] if grid else None)
    ev, _ = evidence(runs, spec)
    pool = ev if not ev.empty else completed(runs)
    if pool.empty or objective not in pool.columns:
        return empty_frame(cols)
    best = best_cell(cell_table(runs, spec), spec)
    fixed = {k: v for k, v in cell_values(runs, grid).get(best or "", {}).items() if k != key}
    pool = pool[mask_where(pool, fixed)] if fixed else pool
    chosen: list[tuple[Any, str]] = []
    groups = [(None, pool)] if key is None else [(py(v), pool[mask_where(pool, {key: v})])
                                                 for v in spec.sweep.grid[key]]
    for value, part in groups[:MAX_CURVES]:
        part = part[np.isfinite(part[objective].astype(float))]
        if part.empty:
            continue
        median = float(part[objective].median())
        rid = part.iloc[int(np.argmin(np.abs(part[objective].astype(float) - median)))]["run_id"]
        chosen.append((value, str(rid)))
    if not chosen:
        return empty_frame(cols)
    hist = history([rid for _, rid in chosen], ["loss", "val_loss"])
    if hist.empty:
        return empty_frame(cols)
    value_of = {rid: v for v, rid in chosen}
    hist = hist.rename(columns={"value": "value_y"})
    hist["value"] = hist["run_id"].map(value_of)
    hist["label"] = hist["value"].map(lambda v: f"{short_key(key)}={value_label(v)}" if key else "best cell")
    frame = hist[cols].reset_index(drop=True)
    frame.attrs["key"] = key
    return frame


# ------------------------------------------------------------------------------------------------
# drawing


def draw(frames: dict[str, pd.DataFrame]) -> list[Figure]:
    figs = draw_curves(frames["curves"])
    figs += draw_gap(frames["gap_size"], "overfit_gap_size", "Train-validation gap against training-set size",
                     "How much more data closes the overfitting gap")
    figs += draw_gap(frames["gap_regularizers"], "overfit_gap_regularizers",
                     "Train-validation gap against each regularizer",
                     "How much each regularizer closes the overfitting gap")
    figs += draw_noise(frames["label_noise"])
    if frames["gap_size"].empty and frames["gap_regularizers"].empty:
        figs += draw_gap_cells(frames["gap_cells"])
    return figs


def _gap_label(metric: str) -> str:
    return {"gap_loss": "gap: validation - training loss", "gap_accuracy": "gap: training - validation accuracy",
            "gap_mae": "gap: validation - training MAE"}.get(metric, metric)


def draw_curves(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    fig, axes = new_figure(fixed=True)
    ax = axes[0][0]
    labels = list(dict.fromkeys(frame["label"]))
    for i, label in enumerate(labels):
        part = frame[frame["label"] == label]
        for key, ls in (("loss", "--"), ("val_loss", "-")):
            sub = part[part["key"] == key]
            ax.plot(sub["step"] + 1, sub["value_y"], ls=ls, lw=1.5, color=COLORS[i % len(COLORS)],
                    label=label if key == "val_loss" else None)
    vals = frame["value_y"][np.isfinite(frame["value_y"])]
    if len(vals) and (vals > 0).all() and vals.max() / vals.min() > 10:
        ax.set_yscale("log")
        plain_log_ticks(ax, "y")
    epoch_axis(ax)
    ax.set_ylabel(metric_label("loss"))
    style(ax)
    ax.legend(fontsize=8, frameon=False, title="validation (solid), train (dashed)", title_fontsize=8)
    title = "Training against validation loss"
    ax.set_title(title)
    return [Figure("overfit_curves", title, "Per-epoch training (dashed) and validation (solid) loss of a "
                   "representative run (median objective) for each value; the space between a pair is the "
                   "overfitting gap.", to_png(fig))]


def draw_gap(frame: pd.DataFrame, name: str, title: str, message: str) -> list[Figure]:
    if frame.empty:
        return []
    panels = list(dict.fromkeys(zip(frame["key"], frame["metric"], strict=True)))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(ncols, nrows, size=(4.6 * ncols, 3.6 * nrows), fixed=True)
    for i, (key, metric) in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        part = frame[(frame["key"] == key) & (frame["metric"] == metric)]
        axis = axis_for(part["value"], key in frame.attrs.get("log_keys", ()))
        if (part["kind"] == "tune").all():
            xs = np.array([axis.x(v) for v in part["value"]], dtype=float)
            ax.scatter(xs, part["mean"], s=8, alpha=0.4, color=COLORS[0], edgecolors="none")
        else:
            errorbar_series(ax, part, axis)
        apply_axis(ax, axis, key_label(key))
        ax.set_ylabel(_gap_label(metric))
        ax.axhline(0, color="0.5", lw=0.8)
        style(ax)
    for j in range(len(panels), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle(title)
    return [Figure(name, title, f"{message}: the final gap (mean with 95% CIs over the {frame.attrs.get('basis', 'confirm')} "
                   "runs; dots are single tune runs where the key is tuned). Zero means no overfitting.",
                   to_png(fig))]


def draw_noise(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    metrics = [m for m in ("accuracy", "val_accuracy", "test_accuracy") if m in set(frame["metric"])]
    if not metrics:
        metrics = list(dict.fromkeys(frame["metric"]))
    fig, axes = new_figure(fixed=True)
    ax = axes[0][0]
    part = frame[frame["metric"].isin(metrics)].copy()
    part["series"] = part["metric"].map(lambda m: {"accuracy": "training", "val_accuracy": "validation",
                                                   "test_accuracy": "test"}.get(m, m)) + part["series"].map(
        lambda s: "" if s == "all runs" else f" ({s})")
    axis = axis_for(part["value"], False)
    errorbar_series(ax, part, axis, dodge=False)
    apply_axis(ax, axis, key_label(NOISE))
    ax.set_ylabel(metric_label(metrics[0]).replace(metrics[0].replace("_", " "), "final accuracy"))
    style(ax)
    title = "Label noise: training accuracy against held-out accuracy"
    ax.set_title(title, fontsize=10)
    return [Figure("overfit_label_noise", title, "Final training, validation and test accuracy (mean with 95% CIs) "
                   "as labels get noisier: training accuracy that stays high while held-out accuracy falls is the "
                   "network memorizing the wrong labels.", to_png(fig))]


def draw_gap_cells(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    metrics = list(dict.fromkeys(frame["metric"]))
    cells = list(dict.fromkeys(frame["label"]))
    fig, axes = new_figure(len(metrics), 1, size=(4.8 * len(metrics) + 1.5, 1.4 + 0.36 * len(cells)))
    for i, metric in enumerate(metrics):
        ax = axes[0][i]
        part = frame[frame["metric"] == metric].set_index("label").reindex(cells)
        ys = np.arange(len(cells))
        mean = part["mean"].to_numpy(dtype=float)
        err = np.vstack([np.nan_to_num(mean - part["ci_low"].to_numpy(dtype=float)),
                         np.nan_to_num(part["ci_high"].to_numpy(dtype=float) - mean)])
        ax.barh(ys, mean, xerr=np.clip(err, 0, None), color=COLORS[i], alpha=0.75, capsize=3)
        ax.set_yticks(ys, cells if i == 0 else [""] * len(cells), fontsize=8)
        ax.set_xlabel(_gap_label(metric))
        ax.axvline(0, color="0.4", lw=0.8)
        ax.invert_yaxis()  # the first cell on top
        style(ax)
    title = "Train-validation gap per cell"
    fig.suptitle(title)
    return [Figure("overfit_gap_cells", title, "The final overfitting gap of each cell (mean with 95% CIs): longer "
                   "bars overfit more.", to_png(fig))]


register("overfitting", "Overfitting", compute, draw)
