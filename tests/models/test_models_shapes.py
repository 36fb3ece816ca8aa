"""Shape rules of each family: pooling, projections, recurrent residuals, attention sizes, counts."""

from __future__ import annotations

import numpy as np
import pytest
from models_testkit import INFOS, cfg

from nnlab.data._base import DataInfo
from nnlab.models import build_model, count_params


def _names(model):
    return [layer.name for layer in model.layers]


def test_mlp_projection_only_where_widths_differ():
    names = _names(build_model(cfg(residual=True, depth=3, width=8), INFOS["tabular"]))
    assert [n for n in names if n.startswith(("proj_", "add_"))] == ["proj_01", "add_01", "add_02", "add_03"]
    same_width = DataInfo(input_shape=(8,), task="regression", kind="tabular")
    assert not [n for n in _names(build_model(cfg(residual=True), same_width)) if n.startswith("proj_")]
    assert not [n for n in _names(build_model(cfg(residual=False), INFOS["tabular"])) if n.startswith("add_")]


def test_mlp_flattens_images_and_sequences():
    model = build_model(cfg(depth=1, width=4), INFOS["image"])
    assert model.get_layer("hidden_01").kernel.shape == (64, 4)
    model = build_model(cfg(depth=1, width=4), INFOS["sequence"])
    assert model.get_layer("hidden_01").kernel.shape == (18, 4)


def test_cnn_alternate_rule_pools_every_second_block_while_large_enough():
    image = DataInfo(input_shape=(16, 16, 1), task="classification", kind="image", n_classes=2)
    model = build_model(cfg(family="cnn", depth=10, width=4, pool="max", downsample="alternate"), image)
    pools = [n for n in _names(model) if n.startswith("pool_")]
    assert pools == ["pool_02", "pool_04", "pool_06"]  # 16 -> 8 -> 4 -> 2, then too small to pool
    assert model.get_layer("hidden_10").output.shape[1:3] == (2, 2)
    short = build_model(cfg(family="cnn", depth=4, width=4, pool="max", downsample="alternate"), image)
    assert [n for n in _names(short) if n.startswith("pool_")] == ["pool_02"]  # never after the last block
    assert type(model.get_layer("pool_02")).__name__ == "MaxPooling2D"
    avg = build_model(cfg(family="cnn", depth=3, width=4, pool="avg", downsample="alternate"), image)
    assert type(avg.get_layer("pool_02")).__name__ == "AveragePooling2D"


def test_cnn_halve_and_cover_rules_pool_after_every_block_while_large_enough():
    image = DataInfo(input_shape=(16, 16, 1), task="classification", kind="image", n_classes=2)
    halve = build_model(cfg(family="cnn", depth=5, width=4, downsample="halve"), image)
    assert [n for n in _names(halve) if n.startswith("pool_")] == ["pool_01", "pool_02", "pool_03"]
    assert halve.get_layer("hidden_05").output.shape[1:3] == (2, 2)  # 16 -> 8 -> 4 -> 2
    cover = build_model(cfg(family="cnn", depth=2, width=4), image)  # the default rule
    assert [cover.get_layer(f"pool_0{i}").pool_size for i in (1, 2)] == [(3, 3), (3, 3)]
    assert cover.get_layer("gap").input.shape[1:3] == (2, 2)  # 16 -> 6 -> 2 ("same" padding)
    avg = build_model(cfg(family="cnn", depth=2, width=4, pool="avg"), image)
    assert type(avg.get_layer("pool_01")).__name__ == "AveragePooling2D"
    for rule in ("cover", "halve", "alternate"):
        none = build_model(cfg(family="cnn", depth=8, width=4, pool="none", downsample=rule), image)
        assert not [n for n in _names(none) if n.startswith("pool_")]


def test_cnn_uses_conv1d_on_sequences_and_kernel_size():
    model = build_model(cfg(family="cnn", depth=2, width=4, kernel_size=5, residual=True), INFOS["sequence"])
    assert type(model.get_layer("hidden_01")).__name__ == "Conv1D"
    assert model.get_layer("hidden_01").kernel.shape == (5, 3, 4)
    assert model.get_layer("proj_01").kernel.shape == (1, 3, 4)
    model = build_model(cfg(family="cnn", depth=1, width=4, kernel_size=3, residual=True), INFOS["image"])
    assert type(model.get_layer("hidden_01")).__name__ == "Conv2D"
    assert model.get_layer("proj_01").kernel.shape == (1, 1, 1, 4)


def test_rnn_cells_sequences_and_residuals():
    model = build_model(cfg(family="rnn", cell="gru", depth=3, width=8, residual=True), INFOS["sequence"])
    layers = [model.get_layer(f"hidden_{i:02d}") for i in (1, 2, 3)]
    assert [type(layer).__name__ for layer in layers] == ["GRU"] * 3
    assert [layer.return_sequences for layer in layers] == [True, True, False]
    adds = [n for n in _names(model) if n.startswith("add_")]
    assert adds == ["add_02", "add_03"]  # the first block changes the width: no skip, no projection
    assert model.get_layer("last_03").output.shape == (None, 8)
    assert layers[0].cell.activation.__name__ == "relu"
    image = build_model(cfg(family="rnn", cell="simple", depth=1, width=4), INFOS["image_rgb_reg"])
    assert image.get_layer("hidden_01").cell.kernel.shape == (18, 4)  # rows as steps: (H, W*C)


def test_transformer_sizes():
    model = build_model(cfg(family="transformer", width=8, heads=4, ffn_multiplier=3, depth=2),
                        INFOS["image_rgb_reg"])
    attention = model.get_layer("hidden_01")
    assert attention.num_heads == 4 and attention.key_dim == 2
    assert model.get_layer("ffn_in_01").units == 24
    assert model.get_layer("ffn_out_02").units == 8
    assert model.get_layer("proj_in").kernel.shape == (18, 8)
    assert model.get_layer("pos_embed").embeddings.shape == (6, 8)


def test_regularizers_on_every_weight_layer():
    model = build_model(cfg(depth=2, residual=True, l2=1e-3), INFOS["tabular"])
    x = np.zeros((2, 5), dtype="float32")
    model(x)
    assert len(model.losses) == 4  # hidden_01, proj_01, hidden_02, head
    assert not build_model(cfg(depth=2), INFOS["tabular"]).losses


def test_count_params():
    config = cfg(depth=2, width=8, normalization="batch")
    # 5*8 (no bias before batch norm), 4*8 (batch norm), 8*8, 4*8, 8*3+3
    assert count_params(config, INFOS["tabular"]) == 40 + 32 + 64 + 32 + 27
    assert count_params(config, INFOS["tabular"], trainable_only=True) == 40 + 16 + 64 + 16 + 27
    # without batch norm the weight layers keep their biases: 5*8+8, 8*8+8, 8*3+3
    assert count_params(cfg(depth=2, width=8), INFOS["tabular"]) == 48 + 72 + 27
    assert count_params(cfg(depth=2, width=16), INFOS["tabular"]) > count_params(config, INFOS["tabular"])


def test_channelless_images_get_a_channel_before_augmentation():
    gray = DataInfo(input_shape=(8, 8), task="classification", kind="image", n_classes=2)
    model = build_model(cfg(family="cnn", depth=1, width=4), gray, augment=["rotate", "noise"])
    assert _names(model)[:4] == ["input", "channels", "aug_rotate", "aug_noise"]
    assert model.get_layer("hidden_01").kernel.shape == (3, 3, 1, 4)
    out = model(np.zeros((2, 8, 8), dtype="float32"), training=True)
    assert tuple(out.shape) == (2, 2)


@pytest.mark.parametrize("family, kind", [("mlp", "tabular"), ("cnn", "image")])
def test_weight_layers_drop_their_bias_only_before_batch_norm(family, kind):
    for normalization, bias in (("batch", False), ("layer", True), ("none", True)):
        model = build_model(cfg(family=family, depth=2, width=4, normalization=normalization), INFOS[kind])
        for name in ("hidden_01", "hidden_02"):
            assert model.get_layer(name).use_bias is bias, (normalization, name)
