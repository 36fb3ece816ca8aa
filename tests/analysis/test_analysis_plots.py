"""The fixed layout: what a figure shows stays inside it and panels do not run into each other."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis._plots import new_figure, place_fixed, plain_log_ticks, pyplot, style


def _extents(fig):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return renderer, [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]


@pytest.mark.parametrize(("ncols", "nrows", "suptitle", "legend", "sharey"), [
    (1, 1, False, False, False), (3, 1, True, False, False), (2, 3, True, True, True), (2, 2, False, True, False),
])
def test_fixed_layout_keeps_labels_inside_and_panels_apart(ncols, nrows, suptitle, legend, sharey):
    plt = pyplot()
    size = (5.4 * ncols, 3.8 * nrows)
    fig, axes = new_figure(ncols, nrows, size=size, fixed=True, sharey=sharey)
    assert fig.get_layout_engine() is None
    x = np.logspace(-4, -1, 50)
    for i, ax in enumerate(axes.ravel()):
        for j in range(3):
            ax.plot(x, 0.3 + (np.log10(x) + 2.5) ** 2 / (10 + j), label=f"activation=sigmoid, depth={j}")
        ax.set_xscale("log")
        plain_log_ticks(ax, "x")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("final val loss (cross-entropy or MSE)")
        ax.set_title(f"depth={2 ** i}", fontsize=9)
        style(ax)
    if legend:
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=8, frameon=False, loc="outside lower center", ncols=2)
    if suptitle:
        fig.suptitle("Final val_loss against learning rate")
    place_fixed(fig)
    renderer, boxes = _extents(fig)
    width, height = (v * fig.dpi for v in size)
    everything = fig.get_tightbbox(renderer)  # inches
    assert everything.x0 >= -0.01 and everything.y0 >= -0.01, everything
    assert everything.x1 <= size[0] + 0.01 and everything.y1 <= size[1] + 0.01, everything
    for a, b in itertools.combinations(boxes, 2):
        overlap_w = min(a.x1, b.x1) - max(a.x0, b.x0)
        overlap_h = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert overlap_w <= 1 or overlap_h <= 1, (a, b)  # pixels
    for leg in fig.legends:
        box = leg.get_window_extent(renderer)
        assert box.y0 >= 0 and all(box.y1 <= ax_box.y0 + 1 for ax_box in boxes), (box, boxes)
    assert 0 < everything.width <= width and 0 < everything.height <= height
    plt.close(fig)
