"""Weights depend on the model seed only, never on Keras' global seed."""

from __future__ import annotations

import numpy as np
import pytest
from models_testkit import INFOS, cfg, weights_of

from nnlab.models import FAMILIES, build_model, derive_seed

INFO_FOR = {"mlp": "tabular", "cnn": "image", "rnn": "sequence", "transformer": "sequence"}


def _build(family, seed, global_seed):
    import keras

    keras.utils.set_random_seed(global_seed)
    config = cfg(family=family, depth=2, normalization="layer", residual=True, dropout=0.1)
    return weights_of(build_model(config, INFOS[INFO_FOR[family]], seed=seed))


@pytest.mark.parametrize("family", FAMILIES.names())
def test_same_seed_same_weights_whatever_the_global_seed(family):
    first = _build(family, seed=11, global_seed=1)
    second = _build(family, seed=11, global_seed=2)
    assert first.keys() == second.keys()
    for name in first:
        for a, b in zip(first[name], second[name], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("family", FAMILIES.names())
def test_different_seed_different_weights(family):
    first = _build(family, seed=11, global_seed=1)
    other = _build(family, seed=12, global_seed=1)
    for name in ("hidden_01", "hidden_02", "head"):
        assert not np.array_equal(first[name][0], other[name][0]), name


def test_equal_shaped_kernels_start_different():
    model = build_model(cfg(depth=3, width=8), INFOS["tabular"], seed=0)
    k2, k3 = (np.asarray(model.get_layer(n).kernel) for n in ("hidden_02", "hidden_03"))
    assert k2.shape == k3.shape == (8, 8)
    assert not np.array_equal(k2, k3)


def test_attention_projections_start_different():
    model = build_model(cfg(family="transformer", width=8, heads=2), INFOS["sequence"], seed=0)
    attention = model.get_layer("hidden_01")
    kernels = [np.asarray(getattr(attention, f"{p}_dense").kernel) for p in ("query", "key", "value")]
    assert not np.array_equal(kernels[0], kernels[1])
    assert not np.array_equal(kernels[1], kernels[2])


def test_derive_seed_is_stable_and_spread():
    assert derive_seed(0, "hidden_01/kernel") == derive_seed(0, "hidden_01/kernel")
    seeds = {derive_seed(s, f"hidden_{i:02d}/kernel") for s in range(5) for i in range(1, 21)}
    assert len(seeds) == 100
    assert all(1 <= s < 2**31 for s in seeds)


def test_auto_initializer_follows_the_activation():
    import keras

    for activation, expected in [("relu", keras.initializers.HeNormal), ("selu", keras.initializers.LecunNormal),
                                 ("tanh", keras.initializers.GlorotUniform)]:
        model = build_model(cfg(activation=activation, depth=1), INFOS["tabular"])
        assert type(model.get_layer("hidden_01").kernel_initializer) is expected
        assert type(model.get_layer("head").kernel_initializer) is keras.initializers.GlorotUniform
    model = build_model(cfg(initializer="orthogonal", depth=1), INFOS["tabular"])
    assert type(model.get_layer("hidden_01").kernel_initializer) is keras.initializers.Orthogonal
