"""The cnn's downsampling rule: what global average pooling reads sees the whole input.

The receptive field is computed from the built model's layers (kernel sizes, dilations, strides and
pool sizes), not from the rule that chose them.
"""

from __future__ import annotations

import keras
import pytest

from nnlab.data._base import DataInfo
from nnlab.models import build_model
from nnlab.models._cnn import pool_factors
from nnlab.spec import Spec


def receptive_field(model) -> int:
    """Receptive field, in input positions along the first spatial axis, of one unit of the tensor the
    ``gap`` layer reads: each layer widens it by (window - 1) times the distance between its inputs."""
    field, jump = 1, 1
    for layer in model.layers:
        if layer.name == "gap":
            return field
        if isinstance(layer, keras.layers.Conv1D | keras.layers.Conv2D):
            window = layer.dilation_rate[0] * (layer.kernel_size[0] - 1) + 1
            stride = layer.strides[0]
        elif hasattr(layer, "pool_size"):
            window, stride = layer.pool_size[0], layer.strides[0]
        else:
            continue
        field += (window - 1) * jump
        jump *= stride
    raise AssertionError("the model has no gap layer")


def default_cnn(**changes):
    """The spec's own model defaults (depth, kernel size, rule) for a cnn."""
    return Spec.from_dict({"name": "rf", "model": {"family": "cnn", "width": 4, **changes}}).model


def image(size: int) -> DataInfo:
    return DataInfo(input_shape=(size, size, 1), task="classification", kind="image", n_classes=10)


@pytest.mark.parametrize("info", [image(8), image(16), image(24),
                                  DataInfo(input_shape=(40, 1), task="classification", kind="sequence",
                                           n_classes=10)],
                         ids=["digits_8x8", "canvas_16x16", "canvas_24x24", "mnist1d_40"])
def test_receptive_field_covers_the_input_at_the_default_depth(info):
    config = default_cnn()
    assert config.downsample == "cover" and config.depth == 2
    model = build_model(config, info)
    assert receptive_field(model) >= info.input_shape[0]


def test_the_old_two_block_net_that_never_pooled_is_gone():
    old = build_model(default_cnn(downsample="alternate"), image(8))  # the rule before model.downsample
    assert not [layer for layer in old.layers if layer.name.startswith("pool_")]
    assert receptive_field(old) == 5  # two 3x3 convolutions: a bag of 5x5 local features
    new = build_model(default_cnn(), image(8))
    assert [layer.name for layer in new.layers if layer.name.startswith("pool_")] == ["pool_01", "pool_02"]
    assert receptive_field(new) == 10 and new.get_layer("gap").input.shape[1:3] == (2, 2)


@pytest.mark.parametrize(("depth", "size", "kernel_size"), [(1, 8, 3), (3, 16, 3), (4, 28, 5), (2, 32, 7)])
def test_receptive_field_covers_the_input_at_other_depths(depth, size, kernel_size):
    model = build_model(default_cnn(depth=depth, kernel_size=kernel_size), image(size))
    assert receptive_field(model) >= size


def test_the_rule_covers_every_input_size_and_depth():
    for size in range(4, 65):
        for depth in range(1, 7):
            for kernel_size in (1, 3, 5):
                field, jump = 1, 1
                for factor in pool_factors((size,), depth, kernel_size, "cover"):
                    field += (kernel_size - 1) * jump + (factor - 1) * jump
                    jump *= factor
                assert field >= size, (size, depth, kernel_size)
