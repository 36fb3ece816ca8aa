"""The registries of nnlab.models: contents, metadata, and a Keras-free import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnlab.errors import SpecError
from nnlab.models import (
    ACTIVATIONS,
    AUGMENTATIONS,
    CELLS,
    FAMILIES,
    INITIALIZERS,
    NORMALIZATIONS,
    resolve_initializer,
)


def test_import_does_not_load_keras_or_tensorflow():
    code = (
        "import sys, nnlab.models\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_family_names_and_metadata():
    assert FAMILIES.kind == "model family"
    assert FAMILIES.names() == ["cnn", "mlp", "rnn", "transformer"]
    assert set(FAMILIES.meta("mlp")["kinds"]) == {"tabular", "image", "sequence"}
    assert set(FAMILIES.meta("cnn")["kinds"]) == {"image", "sequence"}
    assert set(FAMILIES.meta("rnn")["kinds"]) == {"sequence", "image"}
    assert set(FAMILIES.meta("transformer")["kinds"]) == {"sequence", "image"}
    assert FAMILIES.meta("mlp")["options"] == ()
    assert set(FAMILIES.meta("cnn")["options"]) == {"kernel_size", "pool", "downsample"}
    assert FAMILIES.meta("rnn")["options"] == ("cell",)
    assert set(FAMILIES.meta("transformer")["options"]) == {"heads", "ffn_multiplier"}
    assert [FAMILIES.meta(name)["act_layers"] for name in FAMILIES] == [True, True, False, True]


def test_activation_names_and_metadata():
    assert ACTIVATIONS.kind == "activation"
    expected = {"linear", "relu", "sigmoid", "tanh", "gelu", "elu", "selu", "swish", "leaky_relu", "softplus"}
    assert expected <= set(ACTIVATIONS.names())
    assert {n for n in ACTIVATIONS if ACTIVATIONS.meta(n)["saturating"]} == {"sigmoid", "tanh"}
    assert {n for n in ACTIVATIONS if ACTIVATIONS.meta(n)["rectifier"]} == {"relu"}


def test_every_activation_is_a_keras_activation():
    import keras

    for name in ACTIVATIONS:
        assert callable(keras.activations.get(ACTIVATIONS.get(name))), name


def test_initializer_names_and_auto_rule():
    assert INITIALIZERS.kind == "initializer"
    assert set(INITIALIZERS.names()) == {
        "auto", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
        "lecun_normal", "lecun_uniform", "orthogonal",
    }
    assert resolve_initializer("auto", "relu") == "he_normal"
    assert resolve_initializer("auto", "leaky_relu") == "he_normal"
    assert resolve_initializer("auto", "selu") == "lecun_normal"
    assert resolve_initializer("auto", "tanh") == "glorot_uniform"
    assert resolve_initializer("auto", "linear") == "glorot_uniform"
    assert resolve_initializer("orthogonal", "relu") == "orthogonal"


def test_initializer_factories_make_seeded_keras_initializers():
    import keras

    for name in INITIALIZERS:
        init = INITIALIZERS.get(name)(7, "relu")
        assert isinstance(init, keras.initializers.Initializer), name
        a = keras.ops.convert_to_numpy(init((4, 3)))
        b = keras.ops.convert_to_numpy(INITIALIZERS.get(name)(7, "relu")((4, 3)))
        assert (a == b).all(), name
    assert type(INITIALIZERS.get("auto")(1, "relu")).__name__ == "HeNormal"
    assert type(INITIALIZERS.get("auto")(1, "selu")).__name__ == "LecunNormal"
    assert type(INITIALIZERS.get("auto")(1, "sigmoid")).__name__ == "GlorotUniform"


def test_augmentations_and_constants():
    assert AUGMENTATIONS.kind == "augmentation"
    assert {"shift", "rotate", "zoom", "flip", "noise"} <= set(AUGMENTATIONS.names())
    assert NORMALIZATIONS == ("none", "batch", "layer")
    assert CELLS == ("lstm", "gru", "simple")


@pytest.mark.parametrize("registry", [FAMILIES, ACTIVATIONS, INITIALIZERS, AUGMENTATIONS],
                         ids=lambda r: r.kind.replace(" ", "_"))
def test_unknown_name_lists_the_choices(registry):
    first = registry.names()[0]
    with pytest.raises(SpecError, match="expected one of") as err:
        registry.get(first + "x")
    assert f"did you mean '{first}'" in str(err.value)
