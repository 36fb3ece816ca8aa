"""The per-run learning-curve figure.

Drawn with matplotlib's object API (no pyplot state) and a fixed layout: at ~50 ms a
figure it costs a few percent of a small run, where pyplot with tight_layout and a
log axis cost ~250 ms.
"""

from __future__ import annotations

from typing import Any


def curve_panels(history: dict[str, list[float]]) -> list[tuple[str, list[tuple[str, list[float]]]]]:
    """Which series go on which panel: the loss pair, then the accuracy or error pair."""
    panels = []
    for metric in ("loss", "accuracy", "mae"):
        series = [(name, history[name]) for name in (metric, f"val_{metric}") if name in history]
        if series:
            panels.append((metric, series))
    return panels


def spans_decades(values: list[float]) -> bool:
    positive = [v for v in values if v > 0 and v == v and v != float("inf")]
    return bool(positive) and len(positive) == len(values) and max(positive) / min(positive) > 100


def learning_curve(history: dict[str, list[float]], title: str) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = curve_panels(history)
    n = max(1, len(panels))
    fig = Figure(figsize=(4.2 * n, 3.2), dpi=90)
    fig.subplots_adjust(left=0.12 / n * 2, right=0.97, bottom=0.16, top=0.86, wspace=0.3)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (metric, series) in zip(axes, panels, strict=False):
        for name, values in series:
            ax.plot(range(1, len(values) + 1), values, label="validation" if name.startswith("val_") else "train")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        if metric == "loss" and spans_decades([v for _, vals in series for v in vals]):
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return fig
