"""Keras downloads: metadata, and the offline error (this test machine has no network)."""

from __future__ import annotations

import os

import pytest

from nnlab.data import _downloads, dataset_info, load_dataset
from nnlab.errors import FatalError

NAMES = ["mnist", "fashion_mnist", "cifar10"]


@pytest.fixture(autouse=True)
def _no_cached_downloads():
    _downloads.fetch.cache_clear()
    yield
    _downloads.fetch.cache_clear()


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    assert dataset_info(name) == {"task": "classification", "kind": "image", "options": frozenset()}


@pytest.mark.parametrize("name", NAMES)
def test_offline_error_names_the_file_to_copy(make_cfg, monkeypatch, tmp_path, name):
    def offline(_name):
        raise OSError("URL fetch failure: [Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(_downloads, "_keras_load_data", offline)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FatalError) as err:
        load_dataset(make_cfg(dataset=name))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"dataset '{name}' could not be downloaded (OSError: URL fetch failure")
    assert "; connect to the internet once, or copy " in message
    assert message.endswith(_downloads.cache_dir(_downloads.SOURCES[name].subdir))
    assert str(tmp_path) in message


def test_official_test_set_is_kept(make_cfg, monkeypatch):
    import numpy as np

    rng = np.random.default_rng(0)
    fake = ((rng.integers(0, 256, (500, 28, 28), dtype=np.uint8), np.arange(500) % 10),
            (rng.integers(0, 256, (100, 28, 28), dtype=np.uint8), np.arange(100) % 10))
    monkeypatch.setattr(_downloads, "_keras_load_data", lambda _name: fake)
    ds = load_dataset(make_cfg(dataset="mnist", train_size=0.5, test_fraction=0.3, standardize=False))
    assert ds.info.input_shape == (28, 28, 1) and ds.info.n_classes == 10
    assert len(ds.x_test) == 100 and len(ds.x_val) == 100 and len(ds.x_train) == 200
    np.testing.assert_allclose(ds.x_test[..., 0], fake[1][0] / 255, atol=1e-6)


@pytest.mark.slow  # imports TensorFlow (several seconds)
def test_real_keras_loader_fails_cleanly_offline(make_cfg, monkeypatch):
    pytest.importorskip("keras")
    import urllib.error

    from keras.src.utils import file_utils

    target = os.path.join(_downloads.cache_dir(), "mnist.npz")
    if os.path.exists(target):
        pytest.skip("mnist is already downloaded here")

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(file_utils, "urlretrieve", refuse)
    with pytest.raises(FatalError, match=r"dataset 'mnist' could not be downloaded \(Exception: URL fetch"):
        load_dataset(make_cfg(dataset="mnist"))
