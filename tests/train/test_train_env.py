"""Keras is imported without the optional packages nnlab does not use from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnlab.train._env import _hidden


def test_a_hidden_package_cannot_be_imported_inside_and_can_after():
    name = "nnlab_absent_for_the_test"
    assert name not in sys.modules
    with _hidden(("json", name)):
        import json  # already imported: stays importable

        assert json.dumps([1]) == "[1]"
        with pytest.raises(ImportError):
            __import__(name)
    assert name not in sys.modules
    with pytest.raises(ModuleNotFoundError, match="No module named"):  # missing again, not hidden
        __import__(name)


def test_keras_leaves_out_scikit_learn_pandas_and_matplotlib():
    code = ("import sys; from nnlab.train._env import keras; k = keras(); "
            "print([m for m in ('sklearn', 'pandas', 'matplotlib') if m in sys.modules]); "
            "import sklearn.base, pandas, matplotlib.figure; print(k.layers.Dense(2).units)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "2"]
