"""Splits, training subsets, label noise, standardization, classes and cache."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.data import load_dataset
from nnlab.data._load import split_plan
from nnlab.errors import SpecError


def _rows(x):
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def test_split_indices_disjoint_and_complete(make_cfg):
    plan = split_plan(make_cfg(dataset="digits", train_size=0.5))
    pool, val, test = set(plan.pool.tolist()), set(plan.val.tolist()), set(plan.test.tolist())
    assert not pool & val and not pool & test and not val & test
    assert pool | val | test == set(range(1797))
    assert len(test) == round(0.2 * 1797) and len(val) == round(0.2 * 1797)
    np.testing.assert_array_equal(plan.train, plan.pool[: len(plan.train)])


def test_no_shared_rows_between_splits(make_cfg):
    ds = load_dataset(make_cfg(dataset="moons", n_samples=300))
    train, val, test = _rows(ds.x_train), _rows(ds.x_val), _rows(ds.x_test)
    assert len(train) == len(ds.x_train)
    assert not train & val and not train & test and not val & test


def test_splits_are_stratified_even_for_small_training_sets(make_cfg):
    plan = split_plan(make_cfg(dataset="digits", train_size=30))
    ds = load_dataset(make_cfg(dataset="digits", train_size=30))
    all_counts = np.bincount(np.concatenate([ds.y_train, ds.y_val, ds.y_test]))
    assert len(plan.train) == 30
    assert sorted(np.bincount(ds.y_train, minlength=10))[0] >= 2  # every class, about 3 each
    share = all_counts / all_counts.sum()
    for y in (ds.y_val, ds.y_test):
        assert np.abs(np.bincount(y, minlength=10) - share * len(y)).max() <= 1.5


@pytest.mark.parametrize("train_size", [0.1, 0.5, 1.0, 300, None])
def test_val_and_test_do_not_depend_on_train_size(make_cfg, train_size):
    full = split_plan(make_cfg(dataset="digits", seed=4))
    plan = split_plan(make_cfg(dataset="digits", seed=4, train_size=train_size))
    np.testing.assert_array_equal(plan.val, full.val)
    np.testing.assert_array_equal(plan.test, full.test)
    ds = load_dataset(make_cfg(dataset="digits", seed=4, train_size=train_size, standardize=False))
    ref = load_dataset(make_cfg(dataset="digits", seed=4, standardize=False))
    np.testing.assert_array_equal(ds.x_test, ref.x_test)
    np.testing.assert_array_equal(ds.y_val, ref.y_val)


def test_training_subsets_are_nested(make_cfg):
    sizes = [0.1, 50, 0.5, 1.0]
    sets = [load_dataset(make_cfg(dataset="wine", train_size=s, standardize=False)) for s in sizes]
    lengths = [len(ds.x_train) for ds in sets]
    pool = len(split_plan(make_cfg(dataset="wine")).pool)
    assert lengths == [round(0.1 * pool), 50, round(0.5 * pool), pool]
    for smaller, larger in zip(sets, sets[1:], strict=False):
        n = len(smaller.x_train)
        np.testing.assert_array_equal(smaller.x_train, larger.x_train[:n])
        np.testing.assert_array_equal(smaller.y_train, larger.y_train[:n])


def test_train_size_larger_than_pool(make_cfg):
    pool = len(split_plan(make_cfg(dataset="digits")).pool)
    with pytest.raises(SpecError, match=rf"must be <= {pool} \(the training pool\), but got 5000") as err:
        load_dataset(make_cfg(dataset="digits", train_size=5000))
    assert err.value.key == "data.train_size"


@pytest.mark.parametrize("bad", [0, -3, 0.0, 1.5])
def test_bad_train_size(make_cfg, bad):
    with pytest.raises(SpecError, match="train_size"):
        load_dataset(make_cfg(dataset="iris", train_size=bad))


def test_label_noise_one_randomizes_training_labels_only(make_cfg):
    clean = load_dataset(make_cfg(dataset="digits", seed=2))
    noisy = load_dataset(make_cfg(dataset="digits", seed=2, label_noise=1.0))
    np.testing.assert_array_equal(noisy.x_train, clean.x_train)
    np.testing.assert_array_equal(noisy.y_val, clean.y_val)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)
    changed = np.mean(noisy.y_train != clean.y_train)
    assert changed == pytest.approx(1 - 1 / 10, abs=0.05)
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() <= 9


def test_label_noise_share(make_cfg):
    clean = load_dataset(make_cfg(dataset="moons", n_samples=1000))
    noisy = load_dataset(make_cfg(dataset="moons", n_samples=1000, label_noise=0.4))
    changed = np.mean(noisy.y_train != clean.y_train)
    assert changed == pytest.approx(0.4 * (1 - 1 / 2), abs=0.06)


def test_regression_label_noise(make_cfg):
    cfg = {"dataset": "function", "n_samples": 2000, "standardize": False}
    clean = load_dataset(make_cfg(**cfg))
    noisy = load_dataset(make_cfg(**cfg, label_noise=0.5))
    diff = noisy.y_train - clean.y_train
    assert diff.std() == pytest.approx(0.5 * clean.y_train.std(), rel=0.1)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)
    np.testing.assert_array_equal(noisy.y_val, clean.y_val)


def test_label_noise_out_of_range(make_cfg):
    with pytest.raises(SpecError, match=r"label_noise: must be in \[0, 1\], but got 1.5"):
        load_dataset(make_cfg(dataset="iris", label_noise=1.5))


def test_tabular_standardization_per_feature_fitted_on_the_pool(make_cfg):
    ds = load_dataset(make_cfg(dataset="wine"))  # the whole pool trains: its statistics are the training set's
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(ds.x_test.mean(axis=0)).max() > 1e-3


def test_legacy_standardization_fitted_on_the_training_set(make_cfg):
    ds = load_dataset(make_cfg(dataset="wine", train_size=0.5, standardize_fit="train"))
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1, atol=1e-4)
    pooled = load_dataset(make_cfg(dataset="wine", train_size=0.5))
    assert np.abs(pooled.x_train.mean(axis=0)).max() > 1e-3


def test_image_standardization_per_channel(make_cfg):
    ds = load_dataset(make_cfg(dataset="digits"))
    assert ds.x_train.mean() == pytest.approx(0, abs=1e-5)
    assert ds.x_train.std() == pytest.approx(1, abs=1e-4)
    raw = load_dataset(make_cfg(dataset="digits", standardize=False))
    assert raw.x_train.min() == 0 and raw.x_train.max() == 1


def test_regression_targets_standardized(make_cfg):
    ds = load_dataset(make_cfg(dataset="function", function="cubic", n_samples=500))
    assert ds.y_train.mean() == pytest.approx(0, abs=1e-5)
    assert ds.y_train.std() == pytest.approx(1, abs=1e-4)


def test_sequences_not_standardized(make_cfg):
    ds = load_dataset(make_cfg(dataset="parity", n_samples=100, seq_len=8))
    assert set(np.unique(ds.x_train)) == {0.0, 1.0}


def test_classes_are_kept_and_relabelled(make_cfg):
    from nnlab.data._bundled import _sklearn

    x_all, y_all = _sklearn("digits")
    label_of = {row.tobytes(): int(y) for row, y in zip(x_all, y_all, strict=True)}
    ds = load_dataset(make_cfg(dataset="digits_flat", classes=[8, 3], standardize=False))
    assert ds.info.n_classes == 2
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == np.isin(y_all, [8, 3]).sum()
    original = np.array([label_of[row.tobytes()] for row in ds.x_train])
    np.testing.assert_array_equal(np.where(original == 8, 0, 1), ds.y_train)


@pytest.mark.parametrize(("classes", "message"), [
    ([3], "at least 2 classes"),
    ([1, 1], "must not repeat a class"),
    ([2, 10], r"class ids in 0\.\.9 .* but got \[10\]"),
])
def test_bad_classes(make_cfg, classes, message):
    with pytest.raises(SpecError, match=message) as err:
        load_dataset(make_cfg(dataset="digits", classes=classes))
    assert err.value.key == "data.classes"


def test_classes_on_regression_dataset(make_cfg):
    with pytest.raises(SpecError, match="only to classification"):
        load_dataset(make_cfg(dataset="function", classes=[0, 1]))


def test_unknown_dataset(make_cfg):
    with pytest.raises(SpecError, match="did you mean 'moons'") as err:
        load_dataset(make_cfg(dataset="moon"))
    assert err.value.key == "data.dataset"


def test_option_the_dataset_does_not_take(make_cfg):
    with pytest.raises(SpecError, match="not an option of dataset 'moons'") as err:
        load_dataset(make_cfg(dataset="moons", n_classes=3))
    assert err.value.key == "data.n_classes"


def test_pool_too_small(make_cfg):
    with pytest.raises(SpecError, match="too few to split"):
        load_dataset(make_cfg(dataset="moons", n_samples=10, val_fraction=0.04))


def test_fractions_leave_no_pool(make_cfg):
    with pytest.raises(SpecError, match="must be < 1"):
        load_dataset(make_cfg(dataset="iris", val_fraction=0.5, test_fraction=0.5))


def test_cached_and_read_only(make_cfg):
    cfg = make_cfg(dataset="iris")
    ds = load_dataset(cfg)
    assert load_dataset(make_cfg(dataset="iris")) is ds
    with pytest.raises(ValueError, match="read-only"):
        ds.x_train[0, 0] = 1.0
    assert load_dataset(make_cfg(dataset="iris", seed=1)) is not ds


def test_zero_validation_fraction(make_cfg):
    ds = load_dataset(make_cfg(dataset="iris", val_fraction=0.0))
    assert ds.x_val.shape == (0, 4) and len(ds.x_train) == 150 - 30
