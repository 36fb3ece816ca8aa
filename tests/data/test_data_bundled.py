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
