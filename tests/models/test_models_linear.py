"""``activation: linear`` with no normalization gives an affine mlp; relu does not."""

from __future__ import annotations

import numpy as np
import pytest
from models_testkit import INFOS, cfg

from nnlab.models import build_model


def affine_gap(config, info) -> float:
    """max |f(a x1 + (1-a) x2) - (a f(x1) + (1-a) f(x2))| over random inputs, relative to |f|."""
    model = build_model(config, info, seed=5)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(32, *info.input_shape)).astype("float32")
    x2 = rng.normal(size=(32, *info.input_shape)).astype("float32")
    a = 0.3
    f = lambda x: np.asarray(model(x, training=False), dtype="float64")  # noqa: E731
    mixed = f(a * x1 + (1 - a) * x2)
    combined = a * f(x1) + (1 - a) * f(x2)
    scale = np.abs(combined).max() + 1e-12
    return float(np.abs(mixed - combined).max() / scale)


@pytest.mark.parametrize(
    "overrides",
    [
        {"depth": 3},
        {"depth": 3, "residual": True},
        {"depth": 2, "dropout": 0.5, "l2": 0.01},
    ],
    ids=["plain", "residual", "dropout_inference"],
)
@pytest.mark.parametrize("info_name", ["tabular", "image"])
def test_linear_mlp_is_affine(overrides, info_name):
    config = cfg(family="mlp", activation="linear", normalization="none", **overrides)
    assert affine_gap(config, INFOS[info_name]) < 1e-5


def test_relu_mlp_is_not_affine():
    config = cfg(family="mlp", activation="relu", normalization="none", depth=3)
    assert affine_gap(config, INFOS["tabular"]) > 1e-2
