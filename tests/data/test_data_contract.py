"""Every registered dataset through the same checks (ids from the registry)."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.data import DATASETS, dataset_info, load_dataset

DOWNLOADS = {"mnist", "fashion_mnist", "cifar10"}  # no network here; see test_data_downloads.py

# Small sizes keep the whole contract fast; datasets not listed load with their defaults.
SMALL = {
    "moons": {"n_samples": 200},
    "circles": {"n_samples": 200},
    "spirals": {"n_samples": 200, "n_classes": 3},
    "xor": {"n_samples": 200, "n_features": 3},
    "teacher": {"n_samples": 200},
    "function": {"n_samples": 200, "ood_range": (-2.0, 2.0)},
    "parity": {"n_samples": 200, "seq_len": 10},
    "adding": {"n_samples": 200, "seq_len": 10},
    "mnist1d": {"n_samples": 200},
}


@pytest.fixture(params=DATASETS.names())
def cfg_for(request, make_cfg, small_csv):
    name = request.param
    if name in DOWNLOADS:
        pytest.skip(f"{name} needs a download")
    options = dict(SMALL.get(name, {}))
    if name == "csv":
        options.update(path=small_csv, target="kind")

    def build(**overrides):
        return make_cfg(dataset=name, **{**options, **overrides})

    return build


def _splits(ds):
    return [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test), *ds.extra.values()]


def test_shapes_dtypes_and_info(cfg_for):
    ds = load_dataset(cfg_for())
    info = ds.info
    meta = dataset_info(ds.name)
    assert info.kind == meta["kind"]
    assert meta["task"] in (info.task, None)
    for x, y in _splits(ds):
        assert x.dtype == np.float32
        assert x.shape[1:] == info.input_shape
        assert len(x) == len(y)
        assert np.isfinite(x).all()
        assert not x.flags.writeable and not y.flags.writeable
        if info.task == "classification":
            assert y.dtype == np.int64 and y.ndim == 1
            assert y.min() >= 0 and y.max() < info.n_classes
        else:
            assert y.dtype == np.float32 and y.shape[1:] == (info.n_outputs,)
            assert np.isfinite(y).all()
    assert min(len(ds.x_train), len(ds.x_val), len(ds.x_test)) > 0
    if info.task == "classification":
        assert info.n_classes >= 2
        assert set(np.unique(ds.y_train)) == set(range(info.n_classes))
    else:
        assert info.n_classes is None
    if info.kind == "sequence":
        assert len(info.input_shape) == 2
    if info.kind == "image":
        assert len(info.input_shape) == 3


def test_deterministic_given_cfg(cfg_for):
    first = load_dataset(cfg_for(seed=3))
    assert load_dataset(cfg_for(seed=3)) is first  # cached
    from nnlab.data import clear_cache

    clear_cache()
    again = load_dataset(cfg_for(seed=3))
    assert again is not first
    for (x1, y1), (x2, y2) in zip(_splits(first), _splits(again), strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_seed_changes_split(cfg_for):
    a = load_dataset(cfg_for(seed=1))
    b = load_dataset(cfg_for(seed=2))
    assert a.x_train.shape == b.x_train.shape
    assert not np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_test, b.x_test)


def test_train_size_and_label_noise_leave_val_and_test_alone(cfg_for):
    base = load_dataset(cfg_for(seed=5, standardize=False))
    small = load_dataset(cfg_for(seed=5, standardize=False, train_size=0.5, label_noise=0.5))
    assert len(small.x_train) == round(len(base.x_train) * 0.5)
    np.testing.assert_array_equal(small.x_train, base.x_train[: len(small.x_train)])
    for a, b in [(small.x_val, base.x_val), (small.y_val, base.y_val),
                 (small.x_test, base.x_test), (small.y_test, base.y_test)]:
        np.testing.assert_array_equal(a, b)


def test_standardization_does_not_depend_on_train_size(cfg_for):
    """Fitted on the training pool, the statistics are the same for every training subset."""
    base = load_dataset(cfg_for(seed=5))
    small = load_dataset(cfg_for(seed=5, train_size=0.5, label_noise=0.5))
    np.testing.assert_array_equal(small.x_train, base.x_train[: len(small.x_train)])
    for a, b in [(small.x_val, base.x_val), (small.x_test, base.x_test), *zip(
            small.extra.values(), base.extra.values(), strict=True)]:
        np.testing.assert_array_equal(a, b)
    assert (small.info.input_mean, small.info.input_std) == (base.info.input_mean, base.info.input_std)
    if base.info.task == "regression":
        np.testing.assert_array_equal(small.y_val, base.y_val)
