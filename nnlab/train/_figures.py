"""The per-run learning-curve figure."""

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


def learning_curve(history: dict[str, list[float]], title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = curve_panels(history)
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6), squeeze=False)
    for ax, (metric, series) in zip(axes[0], panels, strict=False):
        for name, values in series:
            ax.plot(range(1, len(values) + 1), values, label="validation" if name.startswith("val_") else "train")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if metric == "loss" and all(v > 0 for _, vals in series for v in vals):
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
