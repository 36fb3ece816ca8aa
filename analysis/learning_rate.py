"""Learning rate: the U-curve of final loss against learning rate, the divergence boundary, the best
learning rate per cell and its spread, and learning curves at a few rates.

Frames (``compute``); a *series* is a cell without its learning rate (the learning rate may be a grid
key or a tuned one):

- ``points``: every completed or diverged run: series, learning rate, status, final validation loss.
- ``boundary``: per series, the largest learning rate that completed and the smallest that diverged.
- ``best_lr``: per series, the best learning rate and its spread: across seeds (the best rate of each
  confirm seed) when the rate is a grid key, else across the best 10% of tune runs (at least 3).
- ``curves``: training loss per epoch of the best series at up to five learning rates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis import Figure, HistoryFn, register
from analysis._cells import best_cell, cell_table, grid_keys, objective_info
from analysis._labels import empty_frame, is_missing, metric_label, py, series_label
from analysis._plots import (
    COLORS,
    epoch_axis,
    log_y_if_spread,
    new_figure,
    plain_log_ticks,
    pyplot,
    style,
    to_png,
)
from analysis._runs import PARAM

LR = "train.learning_rate"
MAX_SERIES_COLORS = len(COLORS)
N_CURVES = 5


def _loss_metric(runs: pd.DataFrame) -> str:
    return "val_loss" if "val_loss" in runs.columns else "loss"


MAX_LINES = 6


def _series_of(runs: pd.DataFrame, spec: Any, keys: list[str] | None = None) -> list[str]:
    if keys is None:
        keys = [k for k in grid_keys(spec) if k != LR and PARAM + k in runs.columns]
    labels: dict[tuple[Any, ...], str] = {}  # one label per combination, not per run
    out = []
    for row in zip(*(runs[PARAM + k] for k in keys), strict=True) if keys else ((),) * len(runs):
        key = tuple((type(v).__name__, v) for v in row)  # True and 1 stay apart
        if key not in labels:
            labels[key] = series_label({k: py(v) for k, v in zip(keys, row, strict=True)})
        out.append(labels[key])
    return out


def _panels(runs: pd.DataFrame, spec: Any) -> tuple[list[str], list[str]]:
    """(panel, line) labels: with more than MAX_LINES series, one panel per value of the first grid key
    and one line per combination of the others."""
    keys = [k for k in grid_keys(spec) if k != LR and PARAM + k in runs.columns]
    series = _series_of(runs, spec, keys)
    if len(set(series)) <= MAX_LINES or len(keys) < 2:
        return [""] * len(series), series
    return _series_of(runs, spec, keys[:1]), _series_of(runs, spec, keys[1:])


def compute(runs: pd.DataFrame, spec: Any, history: HistoryFn | None = None) -> dict[str, pd.DataFrame]:
    objective, maximize = objective_info(spec)
    pts = points(runs, spec)
    frames = {
        "points": pts,
        "boundary": boundary(pts),
        "best_lr": best_lr(runs, spec),
        "curves": curves(runs, spec, pts, history),
    }
    for frame in frames.values():
        frame.attrs.update(objective=objective, maximize=maximize, study=spec.name, lr_in_grid=LR in spec.sweep.grid,
                           metric=_loss_metric(runs))
    return frames


def points(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    cols = ["run_id", "phase", "cell", "series", "panel", "line", "lr", "status", "loss", "seed_index"]
    if PARAM + LR not in runs.columns:
        return empty_frame(cols)
    sub = runs[runs["status"].isin(["completed", "diverged"])]
    sub = sub[[not is_missing(v) for v in sub[PARAM + LR]]]
    if sub.empty:
        return empty_frame(cols)
    metric = _loss_metric(sub)
    panel, line = _panels(sub, spec)
    frame = pd.DataFrame({
        "panel": panel, "line": line,
        "run_id": sub["run_id"].to_numpy(), "phase": sub["phase"].to_numpy(), "cell": sub["cell"].to_numpy(),
        "series": _series_of(sub, spec), "lr": sub[PARAM + LR].astype(float).to_numpy(),
        "status": sub["status"].to_numpy(),
        "loss": np.where(sub["status"] == "completed", sub[metric].astype(float), np.nan)
        if metric in sub else np.nan,
        "seed_index": sub["seed_index"].to_numpy(),
    })
    return frame[cols]


def boundary(pts: pd.DataFrame) -> pd.DataFrame:
    cols = ["series", "max_stable_lr", "min_diverged_lr", "n_runs", "n_diverged"]
    rows = []
    for name, part in pts.groupby("series", sort=False):
        ok = part.loc[part["status"] == "completed", "lr"]
        bad = part.loc[part["status"] == "diverged", "lr"]
        rows.append({"series": name, "max_stable_lr": float(ok.max()) if len(ok) else math.nan,
                     "min_diverged_lr": float(bad.min()) if len(bad) else math.nan, "n_runs": len(part),
                     "n_diverged": len(bad)})
    return pd.DataFrame(rows, columns=cols)


def best_lr(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    objective, maximize = objective_info(spec)
    cols = ["series", "best_lr", "lr_low", "lr_high", "n", "spread_over"]
    if PARAM + LR not in runs.columns or objective not in runs.columns:
        return empty_frame(cols)
    done = runs[(runs["status"] == "completed") & np.isfinite(runs[objective].astype(float))]
    if done.empty:
        return empty_frame(cols)
    done = done.assign(_series=_series_of(done, spec), _lr=done[PARAM + LR].astype(float))
    rows = []
    confirm = done[done["phase"] == "confirm"]
    use_seeds = LR in spec.sweep.grid and not confirm.empty and confirm["seed_index"].notna().any()
    for name, part in (confirm if use_seeds else done).groupby("_series", sort=False):
        if use_seeds:
            best = [float(g.sort_values(objective, ascending=not maximize)["_lr"].iloc[0])
                    for _, g in part.groupby("seed_index")]
            centre = float(10 ** np.mean(np.log10(best)))
            rows.append({"series": name, "best_lr": centre, "lr_low": min(best), "lr_high": max(best), "n": len(best),
                         "spread_over": "best rate of each seed"})
        else:
            order = part.sort_values(objective, ascending=not maximize)
            k = max(3, int(math.ceil(0.1 * len(order))))
            top = order["_lr"].head(k)
            rows.append({"series": name, "best_lr": float(order["_lr"].iloc[0]), "lr_low": float(top.min()),
                         "lr_high": float(top.max()), "n": len(top), "spread_over": f"best {len(top)} runs"})
    return pd.DataFrame(rows, columns=cols)


def curves(runs: pd.DataFrame, spec: Any, pts: pd.DataFrame, history: HistoryFn | None) -> pd.DataFrame:
    cols = ["series", "lr", "run_id", "status", "step", "value"]
    if history is None or pts.empty:
        return empty_frame(cols)
    table = cell_table(runs, spec)
    cell = best_cell(table, spec)
    series = pts.loc[pts["cell"] == cell, "series"].iloc[0] if cell in set(pts["cell"]) else pts["series"].iloc[0]
    part = pts[pts["series"] == series]
    lrs = np.log10(part["lr"].to_numpy())
    targets = np.linspace(lrs.min(), lrs.max(), N_CURVES) if len(part) > 1 else lrs
    chosen: list[str] = []
    for t in targets:
        candidates = part.assign(_d=np.abs(lrs - t)).sort_values(["_d", "seed_index"], na_position="last")
        for rid in candidates["run_id"]:
            if rid not in chosen:
                chosen.append(rid)
                break
    chosen = list(dict.fromkeys(chosen))
    hist = history(chosen, ["loss"])
    if hist.empty:
        return empty_frame(cols)
    info = part.set_index("run_id")
    hist = hist.assign(series=series, lr=hist["run_id"].map(info["lr"]), status=hist["run_id"].map(info["status"]))
    return hist.sort_values(["lr", "step"])[cols].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# drawing


def draw(frames: dict[str, pd.DataFrame]) -> list[Figure]:
    return (draw_u_curve(frames["points"]) + draw_boundary(frames["points"], frames["boundary"])
            + draw_best(frames["best_lr"]) + draw_curves(frames["curves"]))


def _binned_median(lr: np.ndarray, y: np.ndarray, bins_per_decade: int = 4) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(y)
    lr, y = lr[ok], y[ok]
    if len(lr) == 0:
        return np.array([]), np.array([])
    edges = np.arange(math.floor(np.log10(lr.min()) * bins_per_decade),
                      math.ceil(np.log10(lr.max()) * bins_per_decade) + 1) / bins_per_decade
    idx = np.digitize(np.log10(lr), edges)
    xs, ys = [], []
    for b in np.unique(idx):
        sel = idx == b
        if sel.sum() >= 1:
            xs.append(10 ** float(np.mean(np.log10(lr[sel]))))
            ys.append(float(np.median(y[sel])))
    return np.array(xs), np.array(ys)


def draw_u_curve(pts: pd.DataFrame) -> list[Figure]:
    if pts.empty or pts["lr"].nunique() < 2:
        return []
    from matplotlib.transforms import blended_transform_factory

    metric = pts.attrs.get("metric", "val_loss")
    panels = list(dict.fromkeys(pts["panel"]))
    lines = list(dict.fromkeys(pts["line"]))
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = new_figure(ncols, nrows, size=(5.4 * ncols + (2.6 if ncols > 1 else 0), 3.8 * nrows),
                           sharex=True, sharey=True, fixed=True)
    ok = pts[pts["status"] == "completed"]
    dense = len(pts) > 20 * max(1, len(lines) * len(panels))
    for p, panel in enumerate(panels):
        ax = axes[p // ncols][p % ncols]
        for i, name in enumerate(lines):
            color = COLORS[i % len(COLORS)]
            part = ok[(ok["panel"] == panel) & (ok["line"] == name)]
            ax.scatter(part["lr"], part["loss"], s=6 if dense else 16, alpha=0.25 if dense else 0.7, color=color,
                       edgecolors="none")
            xs, ys = _binned_median(part["lr"].to_numpy(), part["loss"].to_numpy())
            ax.plot(xs, ys, color=color, lw=1.6, label=name if p == 0 else None)
            bad = pts[(pts["status"] == "diverged") & (pts["panel"] == panel) & (pts["line"] == name)]
            if not bad.empty:
                trans = blended_transform_factory(ax.transData, ax.transAxes)
                ax.scatter(bad["lr"], np.full(len(bad), 0.97 - 0.025 * (i % 4)), marker="x", s=14, transform=trans,
                           color=color, clip_on=False, alpha=0.8)
        ax.set_xscale("log")
        if panel:
            ax.set_title(panel, fontsize=9)
        if p // ncols == nrows - 1:
            ax.set_xlabel("learning rate (log scale)")
        if p % ncols == 0:
            ax.set_ylabel(f"final {metric_label(metric)}")
        style(ax)
    log_y_if_spread(axes[0][0], ok["loss"])
    lo, hi = float(pts["lr"].min()), float(pts["lr"].max())
    axes[0][0].set_xlim(lo / 1.4, hi * 1.4)
    plain_log_ticks(axes[0][0], "x")
    for j in range(len(panels), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(panels) > 1:
        fig.legend(handles, labels, fontsize=8, frameon=False, loc="outside lower center",
                   ncols=min(3, len(labels)))
    else:
        axes[0][0].legend(fontsize=7, frameon=False, loc="lower right")
    title = f"Final {metric} against learning rate"
    fig.suptitle(title)
    return [Figure("lr_u_curve", title, f"Each completed run's final {metric} (dots; lines: median per quarter "
                   "decade) against its learning rate, one colour per cell; crosses along the top edge are runs "
                   "that diverged at that rate.", to_png(fig))]


def draw_boundary(pts: pd.DataFrame, bound: pd.DataFrame) -> list[Figure]:
    if pts.empty or bound.empty or pts["lr"].nunique() < 2:
        return []
    names = list(bound["series"])
    fig, axes = new_figure(size=(7.2, 1.2 + 0.42 * len(names)))
    ax = axes[0][0]
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        part = pts[pts["series"] == name]
        for status, marker, color in (("completed", "o", "0.55"), ("diverged", "x", "#d62728")):
            sub = part[part["status"] == status]
            ax.scatter(sub["lr"], i + rng.uniform(-0.18, 0.18, len(sub)), marker=marker, s=10, color=color,
                       alpha=0.6, label=status if i == 0 else None)
        row = bound.iloc[i]
        if np.isfinite(row["min_diverged_lr"]):
            ax.plot([row["min_diverged_lr"]] * 2, [i - 0.35, i + 0.35], color="#d62728", lw=2)
        if np.isfinite(row["max_stable_lr"]):
            ax.plot([row["max_stable_lr"]] * 2, [i - 0.35, i + 0.35], color="0.2", lw=2)
    ax.set_xscale("log")
    plain_log_ticks(ax, "x")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(len(names) - 0.4, -0.6)  # the first cell on top
    ax.set_xlabel("learning rate (log scale)")
    style(ax)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    title = "Divergence boundary: which learning rates diverge"
    ax.set_title(title)
    return [Figure("lr_boundary", title, "Every run by learning rate and cell: grey dots completed, red crosses "
                   "diverged; the dark bar is the largest rate that completed, the red bar the smallest that "
                   "diverged.", to_png(fig))]


def draw_best(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    fig, axes = new_figure(size=(7.2, 1.2 + 0.42 * len(frame)))
    ax = axes[0][0]
    ys = np.arange(len(frame))
    low = np.clip(frame["best_lr"] - frame["lr_low"], 0, None)
    high = np.clip(frame["lr_high"] - frame["best_lr"], 0, None)
    ax.errorbar(frame["best_lr"], ys, xerr=np.vstack([low, high]), fmt="o", capsize=3, color=COLORS[0])
    ax.set_xscale("log")
    plain_log_ticks(ax, "x")
    ax.set_yticks(ys, list(frame["series"]), fontsize=8)
    ax.set_ylim(len(frame) - 0.4, -0.6)  # the first cell on top
    ax.set_xlabel("learning rate (log scale)")
    style(ax)
    title = "Best learning rate per cell and its spread"
    ax.set_title(title)
    over = frame["spread_over"].iloc[0]
    return [Figure("lr_best", title, f"The best learning rate of each cell (dot) and its spread (bar: {over}); "
                   "bars that do not overlap mean the cells want different rates.", to_png(fig))]


def draw_curves(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    from matplotlib.colors import LogNorm

    plt = pyplot()
    fig, axes = new_figure()
    ax = axes[0][0]
    lrs = sorted(frame["lr"].unique())
    cmap = plt.get_cmap("plasma")
    norm = LogNorm(min(lrs), max(lrs) if max(lrs) > min(lrs) else min(lrs) * 10)
    for _rid, part in frame.groupby("run_id", sort=False):
        lr = float(part["lr"].iloc[0])
        diverged = part["status"].iloc[0] == "diverged"
        vals = part["value"].to_numpy(dtype=float)
        steps = part["step"].to_numpy() + 1
        ax.plot(steps, vals, color=cmap(norm(lr) * 0.9), lw=1.6,
                label=f"lr {lr:.2g}" + (" (diverged)" if diverged else ""))
        if diverged:
            fin = np.isfinite(vals)
            if fin.any():
                ax.scatter(steps[fin][-1], vals[fin][-1], marker="x", color=cmap(norm(lr) * 0.9), s=40, zorder=3)
    finite_vals = frame["value"][np.isfinite(frame["value"])]
    if (finite_vals > 0).all() and len(finite_vals) and finite_vals.max() / finite_vals.min() > 3:
        ax.set_yscale("log")
        plain_log_ticks(ax, "y")
    epoch_axis(ax)
    ax.set_ylabel(metric_label("loss").replace("loss", "training loss", 1))
    style(ax)
    ax.legend(fontsize=8, frameon=False)
    series = frame["series"].iloc[0]
    title = f"Learning curves at {len(lrs)} learning rates ({series})"
    ax.set_title(title, fontsize=10)
    return [Figure("lr_curves", title, "Training loss per epoch of the best cell at learning rates across the "
                   "range tried: too small learns slowly, too large stalls or diverges (cross).", to_png(fig))]


register("learning_rate", "Learning rate", compute, draw)
