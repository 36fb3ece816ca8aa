"""Depth: does depth help, where do gradients vanish or explode, how many units die or saturate.

Frames (``compute``):

- ``objective``: the objective's mean and 95% CI over the evidence runs against ``model.depth``, one
  series per combination of the other grid keys (activation, residual, normalization, ...).
- ``grad_norms``: per series, depth and hidden layer, the median over runs of the last epoch's
  gradient norm of that layer's kernel (``grad_norm/hidden_XX``).
- ``units``: the fraction of dead (relu) or saturated (sigmoid, tanh) units against depth.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from analysis import Figure, HistoryFn, register
from analysis._cells import evidence, grid_keys, objective_info, stat_by
from analysis._labels import empty_frame, is_missing, key_label, metric_label, py, series_label
from analysis._plots import (
    apply_axis,
    axis_for,
    errorbar_series,
    log_y_if_spread,
    new_figure,
    pyplot,
    style,
    to_png,
)
from analysis._runs import PARAM

DEPTH = "model.depth"
GRAD = re.compile(r"^grad_norm/hidden_(\d+)$")
MAX_PANELS = 6


def _series_keys(spec: Any) -> list[str]:
    return [k for k in grid_keys(spec) if k != DEPTH]


def compute(runs: pd.DataFrame, spec: Any, history: HistoryFn | None = None) -> dict[str, pd.DataFrame]:
    objective, maximize = objective_info(spec)
    ev, basis = evidence(runs, spec)
    series = _series_keys(spec)
    frames = {
        "objective": stat_by(ev, DEPTH, objective, series),
        "grad_norms": grad_norms(ev, series),
        "units": units(ev, series),
    }
    for frame in frames.values():
        frame.attrs.update(objective=objective, maximize=maximize, basis=basis, study=spec.name)
    return frames


def grad_norms(runs: pd.DataFrame, series_keys: list[str]) -> pd.DataFrame:
    cols = ["series", "depth", "layer", "grad_norm", "n"]
    grad_cols = sorted((c for c in runs.columns if GRAD.match(c)), key=lambda c: int(GRAD.match(c).group(1)))  # type: ignore[union-attr]
    if runs.empty or not grad_cols or PARAM + DEPTH not in runs.columns:
        return empty_frame(cols)
    present = [k for k in series_keys if PARAM + k in runs.columns]
    labels = [series_label({k: py(row[PARAM + k]) for k in present}) for _, row in runs.iterrows()]
    frame = runs[[PARAM + DEPTH, *grad_cols]].copy()
    frame["series"] = labels
    long = frame.melt(id_vars=["series", PARAM + DEPTH], value_vars=grad_cols, var_name="metric",
                      value_name="grad_norm").dropna(subset=["grad_norm"])
    long = long[np.isfinite(long["grad_norm"].astype(float))]
    long["layer"] = long["metric"].map(lambda c: int(GRAD.match(c).group(1)))  # type: ignore[union-attr]
    long["depth"] = long[PARAM + DEPTH].map(lambda v: int(py(v)) if not is_missing(v) else -1)
    long = long[long["layer"] <= long["depth"]]
    out = long.groupby(["series", "depth", "layer"], sort=True)["grad_norm"].agg(["median", "size"]).reset_index()
    out = out.rename(columns={"median": "grad_norm", "size": "n"})
    return out[cols]


def units(runs: pd.DataFrame, series_keys: list[str]) -> pd.DataFrame:
    parts = []
    for stat in ("dead_units", "saturated_units"):
        if stat in runs.columns and runs[stat].notna().any():
            part = stat_by(runs[runs[stat].notna()], DEPTH, stat, series_keys)
            part.insert(0, "stat", stat)
            parts.append(part)
    if not parts:
        return empty_frame(["stat", "key", "value", "series", "mean", "ci_low", "ci_high", "n"])
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------------------
# drawing


def draw(frames: dict[str, pd.DataFrame]) -> list[Figure]:
    return draw_objective(frames["objective"]) + draw_heatmap(frames["grad_norms"]) + draw_units(frames["units"])


def draw_objective(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty or frame["value"].nunique() < 2:
        return []
    objective, maximize = frame.attrs.get("objective", "objective"), frame.attrs.get("maximize", False)
    fig, axes = new_figure(fixed=True)
    ax = axes[0][0]
    axis = axis_for(frame["value"])
    errorbar_series(ax, frame, axis)
    apply_axis(ax, axis, key_label(DEPTH))
    ax.set_ylabel(metric_label(objective))
    log_y_if_spread(ax, frame["mean"])
    style(ax)
    title = f"{objective} against depth"
    ax.set_title(title)
    return [Figure("depth_objective", title, f"Mean {objective} over the {frame.attrs.get('basis', 'confirm')} runs "
                   f"with 95% CIs at each depth, one line per activation / residual / normalization setting "
                   f"({'higher' if maximize else 'lower'} is better).", to_png(fig))]


def draw_heatmap(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import MaxNLocator

    from analysis._plots import plain_log_ticks

    plt = pyplot()
    series = list(dict.fromkeys(frame["series"]))[:MAX_PANELS]
    ncols = 2 if len(series) == 4 else min(3, len(series))
    nrows = math.ceil(len(series) / ncols)
    depths = sorted(frame["depth"].unique())
    max_layer = int(frame["layer"].max())
    positive = frame["grad_norm"][frame["grad_norm"] > 0]
    if positive.empty:
        return []
    norm = LogNorm(vmin=float(positive.min()), vmax=max(float(positive.max()), float(positive.min()) * 1.0001))
    fig, axes = new_figure(ncols, nrows, size=(4.4 * ncols + 1.2, max(2.8, 0.32 * len(depths) + 2.2) * nrows))
    image = None
    for i, name in enumerate(series):
        ax = axes[i // ncols][i % ncols]
        part = frame[frame["series"] == name]
        grid = np.full((len(depths), max_layer), np.nan)
        for _, row in part.iterrows():
            grid[depths.index(row["depth"]), int(row["layer"]) - 1] = row["grad_norm"]
        masked = np.ma.masked_invalid(np.where(grid > 0, grid, np.nan))
        image = ax.imshow(masked, norm=norm, cmap="magma", aspect="auto", origin="lower", interpolation="nearest",
                          extent=(0.5, max_layer + 0.5, -0.5, len(depths) - 0.5))
        ax.set_yticks(range(len(depths)), [str(d) for d in depths])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hidden layer (1 = next to the input)")
        ax.set_ylabel("depth (hidden blocks)" if i % ncols == 0 else "")
        ax.set_title(name, fontsize=9)
        ax.set_facecolor("0.92")
    for j in range(len(series), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    cb = fig.colorbar(image, ax=axes.ravel().tolist(), pad=0.02)
    cb.set_label("gradient norm (log colour scale)")
    plain_log_ticks(cb.ax, "y")
    title = "Where gradients vanish or explode: gradient norm per layer and depth"
    fig.suptitle(title, fontsize=11)
    plt.setp(axes, facecolor="0.92")
    return [Figure("depth_grad_heatmap", title, "Median over runs of the last epoch's gradient norm of each hidden "
                   "layer (on a fixed batch), one row per depth: colours fading towards layer 1 mean gradients "
                   "vanish before reaching the early layers; bright rows mean they explode.", to_png(fig))]


def draw_units(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty or frame["value"].nunique() < 1:
        return []
    stats = list(dict.fromkeys(frame["stat"]))
    fig, axes = new_figure(len(stats), 1, size=(5.6 * len(stats), 4.2), fixed=True)
    for i, stat in enumerate(stats):
        ax = axes[0][i]
        part = frame[frame["stat"] == stat]
        axis = axis_for(part["value"])
        errorbar_series(ax, part, axis)
        apply_axis(ax, axis, key_label(DEPTH))
        ax.set_ylabel(f"{stat.replace('_', ' ')} (fraction of units)")
        ax.set_ylim(bottom=0)
        style(ax)
    title = "Dead or saturated units against depth"
    fig.suptitle(title)
    return [Figure("depth_units", title, "Fraction of hidden units that never activate (relu: dead) or sit in the "
                   "flat tails (sigmoid/tanh: saturated) on a fixed batch at the last epoch, mean with 95% CIs.",
                   to_png(fig))]


register("depth", "Depth", compute, draw)
