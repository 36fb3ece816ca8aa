"""Drawing helpers shared by the generators: axes for spec values (log, linear or categorical), lines
with confidence intervals as error bars, and a consistent look."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis._labels import is_missing, is_number, py, sort_values, spans_decades, value_label
from analysis._runs import same_value

WIDE = (7.2, 4.4)
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22")


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_png(fig: Any, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; closes it. A fixed-layout figure (``new_figure(fixed=True)``) is placed
    first."""
    plt = pyplot()
    buf = io.BytesIO()
    try:
        if getattr(fig, "nnlab_fixed_layout", False):
            place_fixed(fig)
        # zlib level 3 instead of 6: a third less encoding time for files 5-10% larger
        fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    finally:
        plt.close(fig)
    return buf.getvalue()


@dataclass(frozen=True)
class Axis:
    """Where spec values sit on an axis: 'log' and 'linear' use the values, 'category' uses positions."""

    kind: str
    values: tuple[Any, ...]

    def x(self, value: Any) -> float:
        value = None if is_missing(value) else py(value)
        if self.kind in ("log", "linear"):
            return float(value)
        for i, v in enumerate(self.values):
            if (v is None and value is None) or (v is not None and value is not None and same_value(v, value)):
                return float(i)
        return float("nan")


def axis_for(values: Iterable[Any], log: bool | None = None) -> Axis:
    """Numbers on a log axis when ``log`` (None: when they are positive and span more than a decade),
    else linear; a few grid values with a zero among positives spanning decades (l2: 0, 1e-4, 1e-2) and
    anything that is not a number are categories (None, meaning the whole split, sorts last)."""
    vals = tuple(sort_values(None if is_missing(v) else py(v) for v in values))
    if vals and all(is_number(v) for v in vals):
        positive = [v for v in vals if v > 0]
        if log is None:
            log = spans_decades(vals)
        if log and len(positive) == len(vals):
            return Axis("log", vals)
        if len(vals) <= 8 and len(positive) == len(vals) - 1 and spans_decades(positive):
            return Axis("category", vals)
        return Axis("linear", vals)
    return Axis("category", vals)


def plain_log_ticks(ax: Any, which: str = "y") -> None:
    """Tick labels on a log axis as plain numbers (0.2, 1, 5) rather than 2x10^-1."""
    from matplotlib.ticker import FuncFormatter

    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = sorted(ax.get_ylim() if which == "y" else ax.get_xlim())
    narrow = lo > 0 and hi / lo < 100
    very_narrow = lo > 0 and hi / lo < 10

    def major(v: float, _pos: int) -> str:
        return f"{v:g}"

    def minor(v: float, _pos: int) -> str:
        if not narrow or v <= 0:
            return ""
        lead = round(v / 10 ** math.floor(math.log10(v) + 1e-9), 6)
        return f"{v:g}" if lead in ((2.0, 3.0, 5.0) if very_narrow else (2.0, 5.0)) else ""

    axis.set_major_formatter(FuncFormatter(major))
    axis.set_minor_formatter(FuncFormatter(minor))


def apply_axis(ax: Any, axis: Axis, label: str, which: str = "x") -> None:
    set_label = ax.set_xlabel if which == "x" else ax.set_ylabel
    if axis.kind == "log":
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        if which == "y" or len(axis.values) <= 8:
            plain_log_ticks(ax, which)
        set_label(label if "log" in label else f"{label} (log scale)")
    elif axis.kind == "category":
        ticks = list(range(len(axis.values)))
        (ax.set_xticks if which == "x" else ax.set_yticks)(ticks, [value_label(v) for v in axis.values])
        set_label(label)
    else:
        if len(axis.values) <= 8:
            (ax.set_xticks if which == "x" else ax.set_yticks)([float(v) for v in axis.values],
                                                              [value_label(v) for v in axis.values])
        set_label(label)


def log_y_if_spread(ax: Any, values: Sequence[float] | np.ndarray) -> bool:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if spans_decades(arr.tolist()):
        ax.set_yscale("log")
        ax.set_ylim(arr.min() / 1.15, arr.max() * 1.15)
        plain_log_ticks(ax, "y")
        return True
    return False


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = WIDE, *, fixed: bool = False,
               **kw: Any) -> tuple[Any, Any]:
    """A figure and its grid of axes (always 2-D). Laid out by matplotlib's constrained layout, which
    measures every label; ``fixed=True`` for figures whose decorations are the usual ones (numeric or
    short tick labels, axis labels, titles, a suptitle, legends inside the axes or a figure legend
    below): margins of a fixed size in inches, placed by ``to_png``, at about half the drawing cost."""
    plt = pyplot()
    if not fixed:
        kw.setdefault("layout", "constrained")
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kw)
    if fixed:
        fig.nnlab_fixed_layout = True
    return fig, axes


# fixed layout margins, inches: tick labels + axis label + padding on each side; one title line
_LEFT, _RIGHT, _BOTTOM, _TOP, _TITLE, _SUPTITLE, _LEGEND_ROW = 0.9, 0.2, 0.62, 0.15, 0.3, 0.38, 0.22


def place_fixed(fig: Any) -> None:
    """Margins and gaps of a ``fixed`` figure from what it shows (called once drawn, before saving)."""
    grid = next((ax.get_subplotspec().get_gridspec() for ax in fig.axes if ax.get_subplotspec()), None)
    if grid is None:
        return
    nrows, ncols = grid.get_geometry()
    width, height = fig.get_size_inches()
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.get_subplotspec() is not None]
    titled = any(ax.get_title() for ax in shown)
    x_labels = any(ax.get_xlabel() for ax in shown)
    inner_y = any(ax.get_ylabel() or ax.yaxis.get_tick_params().get("labelleft", True)
                  for ax in shown if ax.get_subplotspec().colspan.start > 0)  # not hidden by sharey
    top = _TOP + (_TITLE if titled else 0.0) + (_SUPTITLE if fig.get_suptitle() else 0.0)
    bottom = _BOTTOM if x_labels else _BOTTOM - 0.25
    for legend in fig.legends:  # a figure legend sits below the axes
        rows = math.ceil(len(legend.get_texts()) / max(1, getattr(legend, "_ncols", 1)))
        bottom += _LEGEND_ROW * rows + 0.1
        legend.set_loc("lower center")
        legend.set_bbox_to_anchor((0.5, 0.02), transform=fig.transFigure)
    wgap = (_LEFT if inner_y else 0.25)
    hgap = _BOTTOM + (_TITLE if titled else 0.0)
    axes_w = max(0.5, (width - _LEFT - _RIGHT - (ncols - 1) * wgap) / ncols)
    axes_h = max(0.5, (height - bottom - top - (nrows - 1) * hgap) / nrows)
    fig.subplots_adjust(left=_LEFT / width, right=1 - _RIGHT / width, bottom=bottom / height, top=1 - top / height,
                        wspace=wgap / axes_w, hspace=hgap / axes_h)


def epoch_axis(ax: Any) -> None:
    """Whole epochs on the x axis."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def style(ax: Any) -> None:
    ax.grid(alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def errorbar_series(ax: Any, frame: pd.DataFrame, axis: Axis, *, x: str = "value", y: str = "mean",
                    lo: str = "ci_low", hi: str = "ci_high", series: str = "series", dodge: bool = True,
                    points: str = "values") -> None:
    """One line per series with 95% CI error bars and, where the frame has a ``points`` column (lists of
    per-run values), every run as a point beside its mean; categorical x positions are dodged apart."""
    names = list(dict.fromkeys(frame[series])) if series in frame else ["all"]
    xs_all = np.array([axis.x(v) for v in frame[x]], dtype=float)
    span = float(np.nanmax(xs_all) - np.nanmin(xs_all)) if len(xs_all) else 0.0
    if axis.kind == "log" and len(xs_all):
        span = float(np.log10(np.nanmax(xs_all) / np.nanmin(xs_all)))
    # move series apart a little so their intervals do not hide each other
    width = (0.25 if axis.kind == "category" else 0.03 * span) if dodge and len(names) > 1 else 0.0
    for i, name in enumerate(names):
        part = frame[frame[series] == name] if series in frame else frame
        xs = np.array([axis.x(v) for v in part[x]], dtype=float)
        offset = (i - (len(names) - 1) / 2) * width / max(1, len(names) - 1) if width else 0.0
        xs = xs * 10**offset if axis.kind == "log" else xs + offset
        order = np.argsort(xs)
        ys = part[y].to_numpy(dtype=float)[order]
        low = part[lo].to_numpy(dtype=float)[order]
        high = part[hi].to_numpy(dtype=float)[order]
        err = np.vstack([np.where(np.isfinite(low), ys - low, 0.0), np.where(np.isfinite(high), high - ys, 0.0)])
        color = COLORS[i % len(COLORS)]
        ax.errorbar(xs[order], ys, yerr=np.clip(err, 0, None), marker="o", ms=4, capsize=3, lw=1.4,
                    color=color, label=str(name))
        if points in part:  # every repeat as a small hollow point beside its mean
            step = (0.08 if axis.kind == "category" else 0.012 * span) if axis.kind != "log" else 0.012 * span
            for x0, vals in zip(xs, part[points], strict=True):
                vals = np.asarray(vals if isinstance(vals, (list, tuple, np.ndarray)) else [], dtype=float)
                vals = vals[np.isfinite(vals)]
                if not len(vals):
                    continue
                px = x0 * 10**step if axis.kind == "log" else x0 + step
                ax.scatter(np.full(len(vals), px), vals, s=12, facecolors="none", edgecolors=color, alpha=0.7,
                           linewidths=0.8, zorder=3)
    if len(names) > 1:
        ax.legend(fontsize=8, frameon=False, loc="best")


def finite(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out
