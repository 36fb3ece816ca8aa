"""Augmentation in raw pixel space: uncovered pixels are background, noise has the strength the spec says."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from models_testkit import cfg, make_data

from nnlab.data import clear_cache, load_dataset
from nnlab.models import build_model, load_model
from nnlab.spec import Spec


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()


def shifted_digits(**data):
    """digits_shifted through the spec, as a run loads it."""
    spec = Spec.from_dict({"name": "aug", "data": {"dataset": "digits_shifted", "train_size": 50, **data}})
    return load_dataset(spec.data)


def augmented(model, x, *, through: str) -> np.ndarray:
    """What the layers up to ``through`` make of ``x`` in training mode."""
    head = keras.Model(model.input, model.get_layer(through).output)
    return np.asarray(head(x, training=True))


def bright(ds, n: int = 16) -> np.ndarray:
    """Images whose every pixel is the brightest value (raw 1.0), as the model sees them."""
    return np.full((n, *ds.info.input_shape), ds.x_train.max(), dtype=np.float32)


def test_a_shifted_image_is_filled_with_the_background():
    ds = shifted_digits(augment=["shift"], shift=0.5)
    background = float(ds.x_train.min())  # a blank pixel, standardized
    assert background < -0.3
    model = build_model(cfg(family="cnn"), ds.info, augment=["shift"], seed=3)
    out = augmented(model, bright(ds), through="aug_to_standardized")
    filled = np.isclose(out, background, atol=1e-4)
    assert filled.mean() > 0.1  # a border of whole rows and columns uncovered
    assert out.min() == pytest.approx(background, abs=1e-4) and out.max() <= ds.x_train.max() + 1e-4


def test_the_legacy_space_filled_with_the_mean_gray():
    ds = shifted_digits(augment=["shift"], shift=0.5, augment_space="standardized")
    model = build_model(cfg(family="cnn"), ds.info, augment=["shift"], seed=3)
    assert "aug_to_raw" not in [layer.name for layer in model.layers]
    out = augmented(model, bright(ds), through="aug_shift")
    assert out.min() == pytest.approx(0.0, abs=1e-4)  # 0 standardized: far brighter than the background
    assert float(ds.x_train.min()) < -0.3


@pytest.mark.parametrize("noise_std", [0.1, 0.3])
def test_noise_has_the_standard_deviation_in_pixel_units(noise_std):
    ds = shifted_digits(augment=["noise"], noise_std=noise_std)
    model = build_model(cfg(family="cnn"), ds.info, augment=["noise"], seed=3)
    x = np.repeat(ds.x_train[:8], 4, axis=0)
    out = augmented(model, x, through="aug_to_standardized")
    raw_noise = (out - x) * ds.info.input_std[0]
    assert raw_noise.std() == pytest.approx(noise_std, rel=0.05)
    assert abs(raw_noise.mean()) < 0.01


def test_strengths_reach_the_layers():
    ds = shifted_digits(augment=["shift", "rotate", "zoom"], shift=0.25, rotation=30, zoom=0.2)
    model = build_model(cfg(family="cnn"), ds.info, augment=["shift", "rotate", "zoom"], seed=3)
    assert model.get_layer("aug_shift").height_factor == 0.25
    assert model.get_layer("aug_rotate").factor == pytest.approx((-30 / 360, 30 / 360))
    assert model.get_layer("aug_zoom").height_factor == 0.2
    names = [layer.name for layer in model.layers]
    assert names[names.index("aug_to_raw"):names.index("aug_to_standardized") + 1] == [
        "aug_to_raw", "aug_shift", "aug_rotate", "aug_zoom", "aug_to_standardized"]


def test_raw_space_is_identity_at_inference_and_survives_saving(tmp_path):
    ds = shifted_digits(augment=["shift", "noise"])
    plain = build_model(cfg(family="cnn"), ds.info, seed=2)
    model = build_model(cfg(family="cnn"), ds.info, augment=["shift", "noise"], seed=2)
    x = ds.x_train[:8]
    want = np.asarray(model(x, training=False))
    np.testing.assert_allclose(want, np.asarray(plain(x, training=False)), rtol=1e-5, atol=1e-5)
    path = tmp_path / "m.keras"
    model.save(path)
    np.testing.assert_allclose(np.asarray(load_model(path)(x, training=False)), want, rtol=1e-6, atol=1e-6)


def test_unstandardized_images_augment_as_they_are():
    ds = shifted_digits(augment=["shift"], standardize="none")
    model = build_model(cfg(family="cnn"), ds.info, augment=["shift"], seed=1)
    assert "aug_to_raw" not in [layer.name for layer in model.layers]
    x, _ = make_data(ds.info, n=4)
    assert np.asarray(model(x, training=True)).shape == (4, 10)
