"""Models (custom layers included) survive model.save / load_model; augmentation trains only."""

from __future__ import annotations

import numpy as np
import pytest
from models_testkit import INFOS, cfg, make_data

from nnlab.models import build_model, custom_objects, load_model


@pytest.mark.parametrize(
    ("family", "info_name", "augment"),
    [
        ("transformer", "sequence", []),
        ("transformer", "image", ["rotate", "zoom"]),
        ("rnn", "sequence_reg", []),
        ("cnn", "image", ["shift", "flip", "noise"]),
    ],
    ids=["transformer-sequence", "transformer-image-aug", "rnn-residual", "cnn-aug"],
)
def test_save_load_round_trip(tmp_path, family, info_name, augment):
    import keras

    info = INFOS[info_name]
    config = cfg(family=family, depth=2, normalization="layer", residual=True, dropout=0.1, l2=1e-4)
    model = build_model(config, info, augment=augment, seed=4)
    x, _ = make_data(info, n=8)
    expected = np.asarray(model(x, training=False))
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), expected, rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]

    again = load_model(path)
    np.testing.assert_allclose(np.asarray(again(x, training=False)), expected, rtol=1e-5, atol=1e-6)


def test_positional_embedding_config_round_trip():
    import keras

    cls = custom_objects()["nnlab>PositionalEmbedding"]
    layer = cls(5, initializer=keras.initializers.RandomNormal(stddev=0.02, seed=3), name="pos")
    x = np.ones((2, 5, 4), dtype="float32")
    y = np.asarray(layer(x))
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(np.asarray(clone(x)), y)  # seeded initializer: same draw
    assert keras.saving.get_registered_object("nnlab>PositionalEmbedding") is cls
    shorter = np.asarray(layer(x[:, :3]))
    np.testing.assert_allclose(shorter, y[:, :3])


def test_augmentation_is_identity_at_inference_only():
    info = INFOS["image"]
    plain = build_model(cfg(family="cnn"), info, seed=2)
    augmented = build_model(cfg(family="cnn"), info, augment=["shift", "rotate", "zoom", "flip", "noise"],
                            seed=2)
    assert [layer.name for layer in augmented.layers[1:6]] == [
        "aug_shift", "aug_rotate", "aug_zoom", "aug_flip", "aug_noise"]
    x, _ = make_data(info, n=8)
    inference = np.asarray(augmented(x, training=False))
    np.testing.assert_allclose(inference, np.asarray(plain(x, training=False)), rtol=1e-6, atol=1e-6)
    assert not np.allclose(np.asarray(augmented(x, training=True)), inference)
