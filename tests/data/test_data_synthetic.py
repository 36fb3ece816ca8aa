"""Generators: what each synthetic and sequence dataset promises."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.data import load_dataset
from nnlab.data._synthetic import FUNCTIONS
from nnlab.errors import SpecError


def _all(ds):
    return np.concatenate([ds.x_train, ds.x_val, ds.x_test]), np.concatenate([ds.y_train, ds.y_val, ds.y_test])


def test_ood_split_lies_outside_x_range(make_cfg):
    raw = load_dataset(make_cfg(dataset="function", n_samples=500, x_range=(-1, 1), ood_range=(-2, 2),
                                standardize=False))
    x_ood, y_ood = raw.extra["ood"]
    assert len(x_ood) == 100 and y_ood.shape == (100, 1)
    assert np.all((np.abs(x_ood) > 1) & (np.abs(x_ood) <= 2))
    assert (x_ood < -1).any() and (x_ood > 1).any()
    assert np.abs(raw.x_train).max() <= 1


def test_ood_split_standardized_with_training_statistics(make_cfg):
    cfg = {"dataset": "function", "n_samples": 500, "ood_range": (-2.0, 2.0)}
    raw = load_dataset(make_cfg(**cfg, standardize=False))
    ds = load_dataset(make_cfg(**cfg))
    mean, std = raw.x_train.mean(), raw.x_train.std()
    np.testing.assert_allclose(ds.extra["ood"][0], (raw.extra["ood"][0] - mean) / std, atol=1e-5)
    y_mean, y_std = raw.y_train.mean(), raw.y_train.std()
    np.testing.assert_allclose(ds.extra["ood"][1], (raw.extra["ood"][1] - y_mean) / y_std, atol=1e-4)


def test_ood_range_on_one_side(make_cfg):
    ds = load_dataset(make_cfg(dataset="function", n_samples=200, ood_range=(0.0, 3.0), standardize=False))
    x_ood = ds.extra["ood"][0]
    assert np.all((x_ood > 1) & (x_ood <= 3))


def test_ood_range_must_reach_outside(make_cfg):
    with pytest.raises(SpecError, match="reaching outside x_range") as err:
        load_dataset(make_cfg(dataset="function", x_range=(-1, 1), ood_range=(-0.5, 0.5)))
    assert err.value.key == "data.ood_range"


def test_no_ood_split_unless_asked(make_cfg):
    assert load_dataset(make_cfg(dataset="function", n_samples=100)).extra == {}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functions_without_noise(make_cfg, name):
    ds = load_dataset(make_cfg(dataset="function", function=name, n_samples=200, noise=0.0,
                               x_range=(-0.9, 0.8), standardize=False))
    x, y = _all(ds)
    assert x.min() >= -0.9 and x.max() <= 0.8
    np.testing.assert_allclose(y, FUNCTIONS[name](x.astype(np.float64)), atol=1e-6)


def test_unknown_function(make_cfg):
    with pytest.raises(SpecError, match="must be one of sin, cubic"):
        load_dataset(make_cfg(dataset="function", function="tan"))


def test_parity_sequences_distinct_and_labelled(make_cfg):
    ds = load_dataset(make_cfg(dataset="parity", n_samples=256, seq_len=8))
    x, y = _all(ds)
    assert x.shape == (256, 8, 1)
    assert len({row.tobytes() for row in x}) == 256
    np.testing.assert_array_equal(y, x[:, :, 0].sum(axis=1).astype(int) % 2)


def test_parity_too_many_samples(make_cfg):
    with pytest.raises(SpecError, match=r"must be <= 2\*\*seq_len = 16"):
        load_dataset(make_cfg(dataset="parity", n_samples=100, seq_len=4))


def test_parity_long_sequences(make_cfg):
    ds = load_dataset(make_cfg(dataset="parity", n_samples=50, seq_len=100))
    assert ds.info.input_shape == (100, 1)


def test_adding_problem(make_cfg):
    ds = load_dataset(make_cfg(dataset="adding", n_samples=100, seq_len=10, standardize=False))
    x, y = _all(ds)
    assert x.shape == (100, 10, 2) and y.shape == (100, 1)
    markers = x[:, :, 1]
    assert np.all(markers[:, :5].sum(axis=1) == 1) and np.all(markers[:, 5:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=1), atol=1e-6)


def test_xor_label_is_parity_of_signs(make_cfg):
    ds = load_dataset(make_cfg(dataset="xor", n_samples=300, n_features=3, noise=0.0, standardize=False))
    x, y = _all(ds)
    np.testing.assert_array_equal(y, (x < 0).sum(axis=1) % 2)


@pytest.mark.parametrize(("n_features", "n_classes"), [(10, 3), (4, 5)])
def test_teacher_classes_roughly_balanced(make_cfg, n_features, n_classes):
    ds = load_dataset(make_cfg(dataset="teacher", n_samples=2000, n_features=n_features, n_classes=n_classes))
    assert ds.info.input_shape == (n_features,) and ds.info.n_classes == n_classes
    share = np.bincount(_all(ds)[1], minlength=n_classes) / 2000
    assert share.min() > 0.5 / n_classes


def test_teacher_is_the_same_function_for_every_seed(make_cfg):
    a = load_dataset(make_cfg(dataset="teacher", n_samples=100, seed=1, standardize=False))
    b = load_dataset(make_cfg(dataset="teacher", n_samples=100, seed=2, standardize=False))
    assert not np.array_equal(a.x_train, b.x_train)
    from nnlab.data._synthetic import _teacher

    w1, b1, w2, b2 = _teacher(10, 3)
    for ds in (a, b):
        x, y = _all(ds)
        np.testing.assert_array_equal(y, (np.tanh(x @ w1 + b1) @ w2 + b2).argmax(axis=1))


def test_spirals_classes(make_cfg):
    ds = load_dataset(make_cfg(dataset="spirals", n_samples=300, n_classes=4))
    assert ds.info.n_classes == 4 and ds.info.input_shape == (2,)
    with pytest.raises(SpecError, match="n_classes: must be an integer >= 2, but got 1"):
        load_dataset(make_cfg(dataset="spirals", n_classes=1))


@pytest.mark.parametrize(("option", "value"), [("n_samples", 3), ("noise", -0.1)])
def test_bad_generator_options(make_cfg, option, value):
    with pytest.raises(SpecError) as err:
        load_dataset(make_cfg(dataset="moons", **{option: value}))
    assert err.value.key == f"data.{option}" and str(value) in str(err.value)
