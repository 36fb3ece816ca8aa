"""Every registered family through the same checks: builds, trains a step, honours the names."""

from __future__ import annotations

import numpy as np
import pytest
from models_testkit import INFOS, cfg, compile_for, make_data, n_outputs

from nnlab.models import ACTIVATIONS, CELLS, FAMILIES, INITIALIZERS, build_model

# Options every family is run with; the data kind rotates over the kinds a family accepts.
COMMON = {
    "plain": {},
    "batchnorm": {"normalization": "batch"},
    "layernorm_residual": {"normalization": "layer", "residual": True},
    "residual_depth3": {"residual": True, "depth": 3},
    "dropout_l1_l2": {"dropout": 0.25, "l1": 1e-4, "l2": 1e-3},
}
KIND_INFOS = {
    "tabular": ["tabular", "tabular_reg"],
    "image": ["image", "image_rgb_reg"],
    "sequence": ["sequence", "sequence_reg"],
}
FAMILY_OPTIONS = {
    "mlp": {
        **{f"act_{name}": {"activation": name, "depth": 1} for name in ACTIVATIONS},
        **{f"init_{name}": {"initializer": name, "depth": 1} for name in INITIALIZERS},
    },
    "cnn": {
        "pool_avg_depth4": {"pool": "avg", "depth": 4},
        "pool_none_depth3": {"pool": "none", "depth": 3},
        "kernel1": {"kernel_size": 1},
        "kernel5_tanh": {"kernel_size": 5, "activation": "tanh"},
    },
    "rnn": {
        **{f"cell_{name}_residual": {"cell": name, "residual": True} for name in CELLS},
        "selu": {"activation": "selu", "cell": "simple"},
    },
    "transformer": {
        "heads1": {"heads": 1},
        "heads4_ffn1": {"heads": 4, "ffn_multiplier": 1},
        "gelu_layernorm_residual": {"activation": "gelu", "normalization": "layer", "residual": True},
    },
}


def _cases():
    cases = []
    for family in FAMILIES:
        infos = [i for kind in FAMILIES.meta(family)["kinds"] for i in KIND_INFOS[kind]]
        options = {**COMMON, **FAMILY_OPTIONS[family]}
        for n, (label, overrides) in enumerate(options.items()):
            info = infos[n % len(infos)]
            cases.append(pytest.param(family, info, overrides, id=f"{family}-{label}-{info}"))
    return cases


def check_contract(model, config, info) -> None:
    names = [layer.name for layer in model.layers]
    by_name = {layer.name: layer for layer in model.layers}
    hidden = [f"hidden_{i:02d}" for i in range(1, config.depth + 1)]
    assert [n for n in names if n.startswith("hidden_")] == hidden
    for name in hidden:
        layer = by_name[name]
        assert layer.trainable_weights, name
        assert layer.weights[0].name == "kernel", (name, layer.weights[0].path)
    acts = sorted(n for n in names if n.startswith("act_"))
    if FAMILIES.meta(config.family)["act_layers"]:
        assert acts == [f"act_{i:02d}" for i in range(1, config.depth + 1)]
        for name in acts:
            assert type(by_name[name]).__name__ == "Activation"
            assert by_name[name].activation.__name__ in (config.activation, "silu")
    else:
        assert acts == []
    head = by_name["head"]
    assert names[-1] == "head"
    assert head.units == n_outputs(info)
    assert head.activation.__name__ == "linear"
    for name in names:
        if name.startswith("proj_") and name[5:].isdigit():  # skip projections (not the transformer's proj_in)
            assert config.residual
            assert by_name[name].activation.__name__ == "linear"


def train_one_step(model, info, *, run_eagerly: bool):
    x, y = make_data(info, n=16)
    compile_for(model, info, run_eagerly=run_eagerly)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    out = np.asarray(model(x, training=False))
    assert out.shape == (16, n_outputs(info))
    assert np.isfinite(out).all()


@pytest.mark.parametrize(("family", "info_name", "overrides"), _cases())
def test_family_contract(family, info_name, overrides):
    info = INFOS[info_name]
    config = cfg(family=family, **overrides)
    model = build_model(config, info, seed=3)
    check_contract(model, config, info)
    # Eager keeps the grid fast; test_family_trains_in_graph_mode covers tf.function.
    train_one_step(model, info, run_eagerly=True)


@pytest.mark.parametrize("family", FAMILIES.names())
def test_family_trains_in_graph_mode(family):
    info = INFOS["image"]
    config = cfg(family=family, normalization="batch", residual=True, dropout=0.1, l2=1e-4, depth=2)
    model = build_model(config, info, augment=["shift", "flip", "noise"], seed=1)
    check_contract(model, config, info)
    train_one_step(model, info, run_eagerly=False)


def test_builds_from_the_spec_model_section():
    try:
        from nnlab.spec._schema import ModelSpec
    except Exception as exc:  # the spec package is written alongside; skip while it does not import
        pytest.skip(f"nnlab.spec not importable: {exc}")
    spec = ModelSpec(family="transformer", depth=1, width=8, heads=2)
    model = build_model(spec, INFOS["sequence"], seed=0)
    check_contract(model, spec, INFOS["sequence"])
