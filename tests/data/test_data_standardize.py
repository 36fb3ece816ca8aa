"""Standardization: fitted on the training pool of every class, never on validation or test; its modes."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.data import load_dataset
from nnlab.data._bundled import _sklearn
from nnlab.data._load import split_plan
from nnlab.data._split import split_indices


def test_statistics_do_not_depend_on_train_size(make_cfg):
    sizes = [10, 30, 0.5, None]
    sets = [load_dataset(make_cfg(dataset="digits", seed=3, train_size=size)) for size in sizes]
    assert len({(ds.info.input_mean, ds.info.input_std) for ds in sets}) == 1
    for ds in sets[:-1]:
        np.testing.assert_array_equal(ds.x_val, sets[-1].x_val)
        np.testing.assert_array_equal(ds.x_train, sets[-1].x_train[: len(ds.x_train)])


def test_statistics_come_from_the_training_pool_only(make_cfg):
    cfg = make_cfg(dataset="digits", seed=3, train_size=10)
    plan = split_plan(cfg)
    assert not set(plan.fit.tolist()) & (set(plan.val.tolist()) | set(plan.test.tolist()))
    np.testing.assert_array_equal(np.sort(plan.fit), np.sort(plan.pool))
    x = _sklearn("digits")[0].astype(np.float64) / 16.0
    info = load_dataset(cfg).info
    assert info.input_mean[0] == pytest.approx(x[plan.pool].mean(), abs=1e-9)
    assert info.input_std[0] == pytest.approx(x[plan.pool].std(), abs=1e-9)
    # with validation and test included the statistics would differ: they were left out
    assert abs(x.mean() - x[plan.pool].mean()) > 1e-5 and abs(x.std() - x[plan.pool].std()) > 1e-5


def test_pretraining_and_fine_tuning_share_statistics(make_cfg):
    """The transfer pattern: pretrain on all of digits 0-4, fine-tune on 10 examples of 5-9."""
    pretrain = load_dataset(make_cfg(dataset="digits", classes=[0, 1, 2, 3, 4], train_size=1.0, seed=2))
    fine_tune = load_dataset(make_cfg(dataset="digits", classes=[5, 6, 7, 8, 9], train_size=10, seed=2))
    every_class = load_dataset(make_cfg(dataset="digits", seed=2))
    stats = (every_class.info.input_mean, every_class.info.input_std)
    assert (pretrain.info.input_mean, pretrain.info.input_std) == stats
    assert (fine_tune.info.input_mean, fine_tune.info.input_std) == stats
    raw = load_dataset(make_cfg(dataset="digits", classes=[5, 6, 7, 8, 9], train_size=10, seed=2,
                                standardize="none"))
    np.testing.assert_allclose(fine_tune.x_train, (raw.x_train - stats[0][0]) / stats[1][0], atol=1e-5)
    legacy = load_dataset(make_cfg(dataset="digits", classes=[5, 6, 7, 8, 9], train_size=10, seed=2,
                                   standardize_fit="train"))
    assert legacy.info.input_std != stats[1]  # what the 10 images alone gave


def test_classes_are_kept_within_the_splits_of_every_class(make_cfg):
    whole = split_plan(make_cfg(dataset="digits", seed=1))
    five = split_plan(make_cfg(dataset="digits", seed=1, classes=[5, 6, 7, 8, 9]))
    y = _sklearn("digits")[1]
    for part in ("pool", "val", "test"):
        kept = getattr(whole, part)[y[getattr(whole, part)] >= 5]
        np.testing.assert_array_equal(getattr(five, part), kept)
    np.testing.assert_array_equal(five.fit, whole.pool)


def test_legacy_fit_splits_the_kept_classes_on_their_own(make_cfg):
    """``standardize_fit: train`` is the pipeline from before: classes kept, relabelled, then split."""
    y = _sklearn("digits")[1]
    plan = split_plan(make_cfg(dataset="digits", seed=1, classes=[8, 3], standardize_fit="train", train_size=20))
    kept = np.flatnonzero(np.isin(y, [8, 3]))
    old = split_indices(np.where(y[kept] == 8, 0, 1), val_fraction=0.2, test_fraction=0.2, seed=1, stratify=True)
    np.testing.assert_array_equal(plan.pool, kept[old.pool])
    np.testing.assert_array_equal(plan.test, kept[old.test])
    np.testing.assert_array_equal(plan.fit, plan.train)
    ds = load_dataset(make_cfg(dataset="digits", seed=1, classes=[8, 3], standardize_fit="train", train_size=20))
    assert ds.x_train.mean() == pytest.approx(0, abs=1e-5) and ds.x_train.std() == pytest.approx(1, abs=1e-4)


def test_too_few_examples_left_after_keeping_classes(make_cfg):
    from nnlab.errors import SpecError

    with pytest.raises(SpecError, match="the classes kept leave 288 for training, 0 for validation") as err:
        load_dataset(make_cfg(dataset="digits", val_fraction=0.001, classes=[0, 1]))
    assert err.value.key == "data.classes"


@pytest.mark.parametrize(("alias", "mode"), [(True, "feature"), (False, "none")])
def test_true_and_false_mean_feature_and_none(make_cfg, alias, mode):
    a = load_dataset(make_cfg(dataset="wine", train_size=0.5, standardize=alias))
    b = load_dataset(make_cfg(dataset="wine", train_size=0.5, standardize=mode))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)


def test_global_mode_uses_one_mean_and_std(make_cfg):
    ds = load_dataset(make_cfg(dataset="wine", standardize="global"))
    assert ds.x_train.mean() == pytest.approx(0, abs=1e-5) and ds.x_train.std() == pytest.approx(1, abs=1e-4)
    assert np.abs(ds.x_train.mean(axis=0)).max() > 0.1  # the features keep their own offsets
    image = load_dataset(make_cfg(dataset="digits", standardize="global"))
    feature = load_dataset(make_cfg(dataset="digits"))
    np.testing.assert_allclose(image.x_train, feature.x_train, atol=1e-6)  # one channel: the same thing
    assert image.info.input_mean == feature.info.input_mean


def test_no_standardization_leaves_pixels_in_unit_range(make_cfg):
    ds = load_dataset(make_cfg(dataset="digits", standardize="none"))
    assert ds.x_train.min() == 0 and ds.x_train.max() == 1
    assert ds.info.input_mean == () and ds.info.input_std == ()


def test_regression_targets_fitted_on_the_clean_pool(make_cfg):
    base = load_dataset(make_cfg(dataset="function", n_samples=400, seed=1))
    small = load_dataset(make_cfg(dataset="function", n_samples=400, seed=1, train_size=50, label_noise=0.5))
    np.testing.assert_array_equal(small.y_val, base.y_val)
    np.testing.assert_array_equal(small.y_test, base.y_test)
