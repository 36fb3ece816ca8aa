"""The report every study gets: the playbook's isolation plot, the objective against every grid and
tune key, parallel coordinates, hyperparameter importance per cell, learning curves of the best runs.

Frames (``compute``):

- ``isolation``: per grid key and value, the objective's mean and 95% CI over the confirm seeds of
  each cell (a cell's confirm runs sit at its best tuned, nuisance, setting); ``series`` names the
  other grid keys' values.
- ``by_key``: one row per run and key (grid and tune): the key's value and the run's objective.
- ``parallel``: one row per completed run: each key's value and its position in [0, 1] (log where
  the values span decades), and the objective.
- ``importance``: per cell and tune key, Optuna's hyperparameter importance over that cell's tune runs.
- ``curves``: per-epoch training and validation loss of the best run of the best cells.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from analysis import Figure, HistoryFn, register
from analysis._cells import (
    best_per_cell,
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
    is_number,
    key_label,
    metric_label,
    py,
    series_label,
    short_key,
    sort_values,
    spans_decades,
    value_label,
)
from analysis._plots import (
    COLORS,
    apply_axis,
    axis_for,
    epoch_axis,
    errorbar_series,
    log_y_if_spread,
    new_figure,
    plain_log_ticks,
    pyplot,
    style,
    to_png,
)
from analysis._runs import PARAM

MAX_CURVES = 6
MAX_IMPORTANCE_CELLS = 40
MAX_LINES = 1500


def compute(runs: pd.DataFrame, spec: Any, history: HistoryFn | None = None) -> dict[str, pd.DataFrame]:
    objective, maximize = objective_info(spec)
    frames = {
        "isolation": isolation(runs, spec),
        "by_key": by_key(runs, spec),
        "parallel": parallel(runs, spec),
        "importance": importance(runs, spec),
        "curves": best_curves(runs, spec, history),
    }
    logs = log_keys(spec, runs)
    for frame in frames.values():
        frame.attrs.update(objective=objective, maximize=maximize, study=spec.name, log_keys=logs)
    return frames


def isolation(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    objective, _ = objective_info(spec)
    ev, basis = evidence(runs, spec)
    keys = grid_keys(spec)
    # a factor with one level isolates nothing
    varied = [key for key in keys if len(spec.sweep.grid[key]) > 1]
    parts = [stat_by(ev, key, objective, [k for k in keys if k != key]) for key in varied]
    frame = pd.concat(parts, ignore_index=True) if parts else empty_frame(["key", "value", "series", "mean"])
    frame.attrs["basis"] = basis
    return frame


def _keys(spec: Any) -> list[str]:
    return grid_keys(spec) + [k for k in tune_keys(spec) if k not in grid_keys(spec)]


def by_key(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    objective, _ = objective_info(spec)
    cols = ["run_id", "phase", "status", "cell", "key", "value", objective]
    if objective not in runs.columns:
        return empty_frame(cols)
    parts = []
    for key in _keys(spec):
        if PARAM + key not in runs.columns:
            continue
        part = runs[["run_id", "phase", "status", "cell", objective]].copy()
        part["key"] = key
        part["value"] = [None if is_missing(v) else py(v) for v in runs[PARAM + key]]
        parts.append(part[cols])
    return pd.concat(parts, ignore_index=True) if parts else empty_frame(cols)


def _position(values: list[Any], log: bool) -> list[float]:
    """Values to [0, 1]: numbers by value (log10 for log keys), others by sorted order."""
    if values and all(is_number(v) for v in values):
        arr = np.array(values, dtype=float)
        if log and (arr > 0).all():
            arr = np.log10(arr)
        lo, hi = float(arr.min()), float(arr.max())
        return [0.5 if hi == lo else float((a - lo) / (hi - lo)) for a in arr]
    order = sort_values(values)
    idx = {repr(v): i for i, v in enumerate(order)}
    n = max(1, len(order) - 1)
    return [idx[repr(v)] / n if len(order) > 1 else 0.5 for v in values]


def parallel(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    objective, _ = objective_info(spec)
    done = completed(runs)
    if objective in done.columns:
        done = done[np.isfinite(done[objective].astype(float))]
    keys = [k for k in _keys(spec) if PARAM + k in done.columns]
    if done.empty or not keys:
        return empty_frame(["run_id", "phase", objective])
    frame = done[["run_id", "phase", "cell", objective]].reset_index(drop=True)
    logs = log_keys(spec, runs)
    for key in keys:
        values = [None if is_missing(v) else py(v) for v in done[PARAM + key]]
        frame[key] = values
        frame[f"pos:{key}"] = _position(values, key in logs)
    frame.attrs["keys"] = keys
    return frame


def _distribution(param: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from nnlab.spec import TuneChoices

    if isinstance(param, TuneChoices):
        choices = tuple(c if isinstance(c, (str, int, float, bool)) or c is None else str(c) for c in param.choices)
        return CategoricalDistribution(choices)
    if param.is_int:
        return IntDistribution(int(param.low), int(param.high), log=param.log, step=int(param.step or 1))
    return FloatDistribution(float(param.low), float(param.high), log=param.log,
                             step=float(param.step) if param.step else None)


def _trial_value(value: Any, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    value = py(value)
    if isinstance(dist, CategoricalDistribution):
        if isinstance(value, tuple):
            value = str(list(value))
        return value if value in dist.choices else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    value = min(max(value, dist.low), dist.high)
    return int(round(value)) if isinstance(dist, IntDistribution) else float(value)


def importance(runs: pd.DataFrame, spec: Any) -> pd.DataFrame:
    """Optuna's (PED-ANOVA) importance of each tune key within each cell, from the cell's tune runs."""
    objective, maximize = objective_info(spec)
    cols = ["cell", "label", "param", "importance", "n_trials"]
    keys = tune_keys(spec)
    tune = completed(runs[runs["phase"] == "tune"])
    if len(keys) < 2 or tune.empty or objective not in tune.columns:
        return empty_frame(cols)
    import optuna
    from optuna.trial import create_trial

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    dists = {k: _distribution(spec.sweep.tune[k]) for k in keys}
    rows = []
    cells = list(dict.fromkeys(tune["cell"]))[:MAX_IMPORTANCE_CELLS]
    labels = {c: series_label(v) for c, v in cell_values(runs, grid_keys(spec)).items()}
    for cell in cells:
        part = tune[tune["cell"] == cell]
        trials = []
        for _, run in part.iterrows():
            value = float(run[objective])
            params = {k: _trial_value(run.get(PARAM + k), dists[k]) for k in keys}
            if not math.isfinite(value) or any(v is None for v in params.values()):
                continue
            trials.append(create_trial(params=params, distributions=dists, value=value))
        if len(trials) < 4:
            continue
        study = optuna.create_study(direction="maximize" if maximize else "minimize")
        study.add_trials(trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                imp = optuna.importance.get_param_importances(study)
            except (ValueError, RuntimeError):
                continue
        for key in keys:
            rows.append({"cell": cell, "label": labels.get(cell, cell), "param": key, "importance": float(imp.get(key, 0.0)), "n_trials": len(trials)})
    return pd.DataFrame(rows, columns=cols)


def best_curves(runs: pd.DataFrame, spec: Any, history: HistoryFn | None) -> pd.DataFrame:
    objective, maximize = objective_info(spec)
    cols = ["cell", "label", "run_id", "key", "step", "value"]
    if history is None:
        return empty_frame(cols)
    table = cell_table(runs, spec)
    col = f"{objective}_mean"
    if table.empty or col not in table:
        return empty_frame(cols)
    top = table.dropna(subset=[col]).sort_values(col, ascending=not maximize).head(MAX_CURVES)["cell"].tolist()
    ev, _ = evidence(runs, spec)
    pool = ev if not ev.empty else completed(runs)
    best = best_per_cell(pool[pool["cell"].isin(top)], objective, maximize)
    if best.empty:
        return empty_frame(cols)
    labels = {cell: series_label(values) for cell, values in cell_values(runs, grid_keys(spec)).items()}
    keys = ["loss", "val_loss"]
    hist = history(best["run_id"].tolist(), keys)
    if hist.empty:
        return empty_frame(cols)
    cell_of = dict(zip(best["run_id"], best["cell"], strict=True))
    hist = hist.assign(cell=hist["run_id"].map(cell_of))
    hist["label"] = hist["cell"].map(lambda c: labels.get(c, c))
    order = {c: i for i, c in enumerate(top)}
    hist = hist.sort_values(["cell", "key", "step"], key=lambda s: s.map(order) if s.name == "cell" else s)
    return hist[cols].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# drawing


def draw(frames: dict[str, pd.DataFrame]) -> list[Figure]:
    figs: list[Figure] = []
    figs += draw_isolation(frames["isolation"])
    figs += draw_by_key(frames["by_key"])
    figs += draw_parallel(frames["parallel"])
    figs += draw_importance(frames["importance"])
    figs += draw_curves(frames["curves"])
    return figs


def _better(maximize: bool) -> str:
    return "higher is better" if maximize else "lower is better"


def draw_isolation(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    objective, maximize = frame.attrs.get("objective", "objective"), frame.attrs.get("maximize", False)
    figs = []
    for key in list(dict.fromkeys(frame["key"]))[:4]:
        part = frame[frame["key"] == key]
        if part["mean"].isna().all():
            continue
        fig, axes = new_figure(fixed=True)
        ax = axes[0][0]
        axis = axis_for(part["value"], key in frame.attrs.get("log_keys", ()))
        errorbar_series(ax, part, axis)
        apply_axis(ax, axis, key_label(key))
        ax.set_ylabel(metric_label(objective))
        log_y_if_spread(ax, part["mean"])
        style(ax)
        title = f"Isolation: {objective} against {short_key(key)}"
        ax.set_title(title)
        basis = frame.attrs.get("basis", "confirm")
        figs.append(Figure(f"compare_isolation_{short_key(key)}", title,
                           f"Each value of {key} at its best tuned nuisance setting: mean {objective} over the "
                           f"{basis} runs with 95% CIs, one line per combination of the other grid keys "
                           f"({_better(maximize)}).", to_png(fig)))
    return figs


def draw_by_key(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    objective, maximize = frame.attrs.get("objective", "objective"), frame.attrs.get("maximize", False)
    keys = list(dict.fromkeys(frame["key"]))
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = new_figure(ncols, nrows, size=(4.2 * ncols, 3.4 * nrows), fixed=True)
    ok = frame[frame["status"] == "completed"]
    all_y = ok[objective].astype(float)
    for i, key in enumerate(keys):
        ax = axes[i // ncols][i % ncols]
        part = ok[ok["key"] == key]
        axis = axis_for(frame.loc[frame["key"] == key, "value"], key in frame.attrs.get("log_keys", ()))
        rng = np.random.default_rng(0)
        for j, phase in enumerate(("tune", "run", "confirm")):
            sub = part[part["phase"] == phase]
            if sub.empty:
                continue
            xs = np.array([axis.x(v) for v in sub["value"]], dtype=float)
            if axis.kind == "category":
                xs = xs + rng.uniform(-0.15, 0.15, len(xs))
            ax.scatter(xs, sub[objective].astype(float), s=9 if phase == "tune" else 18, alpha=0.45 if phase == "tune"
                       else 0.85, color=COLORS[j], label=phase, edgecolors="none")
        apply_axis(ax, axis, key_label(key))
        ax.set_ylabel(metric_label(objective) if i % ncols == 0 else "")
        log_y_if_spread(ax, all_y)
        style(ax)
        if i == 0 and part["phase"].nunique() > 1:
            ax.legend(fontsize=8, frameon=False)
    for j in range(len(keys), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    title = f"{objective} against every grid and tune key"
    fig.suptitle(title)
    return [Figure("compare_by_key", title, f"Every completed run's {objective} against each key it was run with "
                   f"({_better(maximize)}); tune runs small, confirm runs large.", to_png(fig))]


def draw_parallel(frame: pd.DataFrame) -> list[Figure]:
    keys = frame.attrs.get("keys", [])
    if frame.empty or not keys:
        return []
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    objective, maximize = frame.attrs.get("objective", "objective"), frame.attrs.get("maximize", False)
    plt = pyplot()
    total = len(frame)
    if len(frame) > MAX_LINES:  # every confirm run, the best tune runs, then a fixed random sample
        rng = np.random.default_rng(0)
        ranked = frame.sort_values(objective, ascending=not maximize)
        keep = set(frame.index[frame["phase"] != "tune"]) | set(ranked.index[: MAX_LINES // 4])
        rest = [i for i in frame.index if i not in keep]
        keep |= set(rng.choice(rest, size=max(0, min(len(rest), MAX_LINES - len(keep))), replace=False).tolist())
        frame = frame.loc[sorted(keep)]
    y = frame[objective].astype(float).to_numpy()
    lo, hi = np.nanpercentile(y, [2, 98]) if len(y) > 1 else (float(np.nanmin(y)), float(np.nanmax(y)) + 1e-12)
    ypos = np.clip((y - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    axes_names = [*keys, objective]
    jitter = np.random.default_rng(1)
    columns = []
    for k in keys:
        p = frame[f"pos:{k}"].to_numpy(dtype=float)
        if len(np.unique(p)) <= 10:  # a few values: spread the lines a little so they stay apart
            p = np.clip(p + jitter.uniform(-0.025, 0.025, len(p)), -0.03, 1.03)
        columns.append(p)
    pos = np.column_stack([*columns, ypos])
    fig, axes = new_figure(size=(max(6.0, 1.7 * len(axes_names)), 4.4))
    ax = axes[0][0]
    cmap = plt.get_cmap("viridis_r" if not maximize else "viridis")
    norm = Normalize(lo, hi)
    order = np.argsort(y if not maximize else -y)[::-1]  # best drawn last, on top
    segs = [np.column_stack([np.arange(len(axes_names)), pos[i]]) for i in order]
    lc = LineCollection(segs, colors=cmap(norm(y[order])), linewidths=0.8, alpha=0.5 if len(y) < 300 else 0.25)
    ax.add_collection(lc)
    ax.set_xlim(-0.1, len(axes_names) - 0.9)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(range(len(axes_names)), [short_key(k) for k in axes_names], rotation=15)
    for i, key in enumerate(keys):
        vals = [v for v in frame[key]]
        positions = frame[f"pos:{key}"].to_numpy(dtype=float)
        ends = {}
        for v, p in zip(vals, positions, strict=True):
            ends[round(float(p), 6)] = v
        shown = sorted(ends.items())
        if len(shown) > 6:
            shown = [shown[0], shown[len(shown) // 2], shown[-1]]
        for p, v in shown:
            ax.text(i + 0.04, p, value_label(v) if not isinstance(v, float) else f"{v:.3g}", fontsize=7,
                    va="center", color="0.25")
        ax.axvline(i, color="0.6", lw=0.8)
    ax.axvline(len(keys), color="0.6", lw=0.8)
    ax.set_yticks([])
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=ax, pad=0.02)
    cb.set_label(metric_label(objective))
    title = f"Parallel coordinates of the completed runs, coloured by {objective}"
    ax.set_title("Parallel coordinates")
    shown = f" ({len(frame)} of {total} runs: every confirm run, the best and a random sample of the rest)" \
        if len(frame) < total else ""
    return [Figure("compare_parallel", title, f"Each line is a completed run through its key values (log-scaled "
                   f"where they span decades){shown}; colour and the last axis give {objective} "
                   f"({_better(maximize)}, best drawn on top).", to_png(fig))]


def draw_importance(frame: pd.DataFrame) -> list[Figure]:
    if frame.empty:
        return []
    table = frame.pivot_table(index="label", columns="param", values="importance", sort=False)
    cells = list(table.index)
    params = list(table.columns)
    fig, axes = new_figure(size=(max(5.0, 1.4 * len(params) + 3), max(2.6, 0.35 * len(cells) + 1.6)))
    ax = axes[0][0]
    im = ax.imshow(table.to_numpy(dtype=float), vmin=0, vmax=1, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(params)), [short_key(p) for p in params])
    ax.set_yticks(range(len(cells)), [c if len(c) < 60 else c[:57] + "..." for c in cells], fontsize=8)
    for i in range(len(cells)):
        for j in range(len(params)):
            v = table.iloc[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
    ax.set_xlabel("tuned key")
    ax.set_ylabel("cell")
    cb = fig.colorbar(im, ax=ax, pad=0.02)
    cb.set_label("importance (share of the objective's variation)")
    ax.set_title("Hyperparameter importance per cell")
    return [Figure("compare_importance", "Hyperparameter importance per cell",
                   "Optuna's PED-ANOVA importance of each tuned key within each cell (from the cell's tune runs; "
                   "rows sum to 1): the keys that most need tuning.", to_png(fig))]


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
            if not sub.empty:
                ax.plot(sub["step"] + 1, sub["value"], ls=ls, color=COLORS[i % len(COLORS)], lw=1.4,
                        label=label if key == "val_loss" else None)
    epoch_axis(ax)
    ax.set_ylabel(metric_label("loss"))
    vals = frame["value"].astype(float)
    if (vals > 0).all() and spans_decades(vals.tolist(), 0.5):
        ax.set_yscale("log")
        plain_log_ticks(ax, "y")
    style(ax)
    ax.legend(fontsize=7, frameon=False, title="validation (solid), train (dashed)", title_fontsize=7)
    ax.set_title("Learning curves of the best runs")
    return [Figure("compare_curves", "Learning curves of the best runs",
                   f"Training (dashed) and validation (solid) loss per epoch of the best run in each of the "
                   f"{len(labels)} best cells.", to_png(fig))]


register("compare", "Comparison", compute, draw)
