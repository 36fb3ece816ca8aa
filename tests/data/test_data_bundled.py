"""The bundled datasets read from scikit-learn's own files equal its loaders, without importing it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from nnlab.data import _bundled

NAMES = ("digits", "wine", "breast_cancer", "iris")


@pytest.mark.parametrize("name", NAMES)
def test_shipped_files_read_as_scikit_learn_loads_them(name):
    from sklearn import datasets

    table = _bundled._read_shipped(name)
    x, y = table[:, :-1], table[:, -1]
    want_x, want_y = getattr(datasets, f"load_{name}")(return_X_y=True)
    assert x.shape == want_x.shape and np.array_equal(x, want_x)
    assert np.array_equal(y.astype(np.int64), want_y)
    got_x, got_y = _bundled._sklearn(name)
    assert got_x.dtype == np.float32 and got_y.dtype == np.int64 and not got_x.flags.writeable
    assert np.array_equal(got_x, want_x.astype(np.float32)) and np.array_equal(got_y, want_y)


def test_without_the_files_scikit_learn_loads_them(monkeypatch):
    shipped = _bundled._sklearn("iris")
    monkeypatch.setattr(_bundled, "_FILES", {name: ("moved.csv", 0) for name in NAMES})
    _bundled._sklearn.cache_clear()
    try:
        assert _bundled._read_shipped("iris") is None
        x, y = _bundled._sklearn("iris")
        assert np.array_equal(x, shipped[0]) and np.array_equal(y, shipped[1])
    finally:
        _bundled._sklearn.cache_clear()


def test_loading_digits_does_not_import_scikit_learn():
    code = ("import sys; from nnlab.data._bundled import _sklearn; x, y = _sklearn('digits'); "
            "print(x.shape, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(1797,", "64)", "False"]


def _digit_places(images: np.ndarray, digits: np.ndarray) -> list[tuple[int, int]]:
    """Where each 8x8 digit sits on its canvas; asserts the rest of the canvas is blank."""
    places = []
    size = images.shape[1]
    for image, digit in zip(images[..., 0], digits, strict=True):
        found = [(r, c) for r in range(size - 7) for c in range(size - 7)
                 if np.array_equal(image[r:r + 8, c:c + 8], digit)
                 and image.sum() == pytest.approx(digit.sum(), abs=1e-4)]
        assert found, "the digit is not on its canvas"
        places.append(found[0])
    return places


def test_digits_shifted_places_each_digit_on_a_blank_canvas():
    x, y = _bundled._sklearn("digits")
    raw = _bundled.digits_shifted(np.random.default_rng(0))
    assert raw.x.shape == (1797, 16, 16, 1) and raw.x.dtype == np.float32 and raw.n_classes == 10
    np.testing.assert_array_equal(raw.y, y)
    digits = (x / 16.0).reshape(-1, 8, 8).astype(np.float32)
    places = _digit_places(raw.x[:60], digits[:60])
    rows, cols = zip(*places, strict=True)
    assert min(rows) == 0 and max(rows) == 8 and min(cols) == 0 and max(cols) == 8  # the whole canvas
    bigger = _bundled.digits_shifted(np.random.default_rng(0), canvas=24)
    assert bigger.x.shape == (1797, 24, 24, 1)
    _digit_places(bigger.x[:5], digits[:5])


def test_digits_shifted_through_the_registry(make_cfg):
    from nnlab.data import clear_cache, load_dataset
    from nnlab.errors import SpecError

    a = load_dataset(make_cfg(dataset="digits_shifted", seed=1, standardize=False))
    assert a.info.input_shape == (16, 16, 1) and a.info.kind == "image" and a.info.n_classes == 10
    counts = np.bincount(np.concatenate([a.y_train, a.y_val, a.y_test]), minlength=10)
    assert counts.min() >= 174 and counts.max() <= 183  # the digits' own balance
    again = _bundled.digits_shifted(np.random.default_rng(5))  # positions follow the seed
    assert not np.array_equal(again.x, _bundled.digits_shifted(np.random.default_rng(6)).x)
    np.testing.assert_array_equal(again.x, _bundled.digits_shifted(np.random.default_rng(5)).x)
    clear_cache()
    np.testing.assert_array_equal(load_dataset(make_cfg(dataset="digits_shifted", seed=1, standardize=False)).x_train,
                                  a.x_train)
    with pytest.raises(SpecError, match=r"must be an integer in \[8, 128\]") as err:
        load_dataset(make_cfg(dataset="digits_shifted", canvas=6))
    assert err.value.key == "data.canvas"
