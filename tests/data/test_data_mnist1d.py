"""MNIST-1D generated locally: shape, one data set per seed, balanced classes, global generators left alone."""

from __future__ import annotations

import random

import numpy as np
import pytest

from nnlab.data import load_dataset
from nnlab.data._mnist1d import _generate
from nnlab.errors import SpecError


@pytest.fixture(autouse=True)
def _fresh_generation():
    _generate.cache_clear()
    yield
    _generate.cache_clear()


def _all(ds):
    return np.concatenate([ds.x_train, ds.x_val, ds.x_test]), np.concatenate([ds.y_train, ds.y_val, ds.y_test])


def test_shape_kind_and_balance(make_cfg):
    ds = load_dataset(make_cfg(dataset="mnist1d", n_samples=500, seed=0))
    assert ds.info.input_shape == (40, 1) and ds.info.kind == "sequence" and ds.info.n_classes == 10
    x, y = _all(ds)
    assert x.shape == (500, 40, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [50] * 10)
    assert abs(float(x.mean())) < 0.05 and float(x.std()) == pytest.approx(1.0, abs=0.05)  # the package's scale
    assert len(ds.x_test) == 100 and np.bincount(ds.y_test, minlength=10).min() == 10  # stratified


def test_one_data_set_per_seed(make_cfg):
    first = _all(load_dataset(make_cfg(dataset="mnist1d", n_samples=200, seed=4)))[0]
    _generate.cache_clear()
    from nnlab.data import clear_cache

    clear_cache()
    again = _all(load_dataset(make_cfg(dataset="mnist1d", n_samples=200, seed=4)))[0]
    np.testing.assert_array_equal(first, again)
    other = _all(load_dataset(make_cfg(dataset="mnist1d", n_samples=200, seed=5)))[0]
    assert not np.isin(other.reshape(200, -1)[:, 0], first.reshape(200, -1)[:, 0]).any()  # fresh signals


def test_global_generators_are_left_as_they_were(make_cfg):
    np.random.seed(123)
    random.seed(7)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    load_dataset(make_cfg(dataset="mnist1d", n_samples=100, seed=1))
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    assert random.getstate() == python_state


def test_options(make_cfg):
    quiet = _all(load_dataset(make_cfg(dataset="mnist1d", n_samples=100, noise=0.0, seq_len=20, seed=1)))[0]
    assert quiet.shape == (100, 20, 1)
    with pytest.raises(SpecError, match="multiple of 10") as err:
        load_dataset(make_cfg(dataset="mnist1d", n_samples=105))
    assert err.value.key == "data.n_samples"
