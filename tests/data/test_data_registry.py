"""Registry metadata, and that reading it stays cheap."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from nnlab.data import DATASETS, GENERATOR_OPTIONS, dataset_info
from nnlab.errors import SpecError

EXPECTED = {
    "digits", "digits_flat", "wine", "breast_cancer", "iris", "moons", "circles", "spirals", "xor",
    "teacher", "function", "parity", "adding", "csv", "mnist", "fashion_mnist", "cifar10", "digits_shifted",
    "mnist1d",
}


def test_every_expected_dataset_is_registered():
    assert EXPECTED <= set(DATASETS.names())


@pytest.mark.parametrize("name", DATASETS.names())
def test_metadata_matches_the_loader(name):
    info = dataset_info(name)
    assert set(info) == {"task", "kind", "options"}
    assert info["task"] in ("classification", "regression", None)
    assert info["kind"] in ("tabular", "image", "sequence")
    assert isinstance(info["options"], frozenset) and info["options"] <= set(GENERATOR_OPTIONS)
    params = list(inspect.signature(DATASETS.get(name)).parameters)
    assert params[0] == "rng" and set(params[1:]) == info["options"]


def test_only_csv_leaves_the_task_to_its_data():
    assert [n for n in DATASETS.names() if dataset_info(n)["task"] is None] == ["csv"]


def test_generator_options():
    assert GENERATOR_OPTIONS == ("n_samples", "noise", "n_features", "n_classes", "seq_len", "canvas", "function",
                                 "x_range", "ood_range", "path", "target")


def test_unknown_name():
    with pytest.raises(SpecError, match="unknown dataset 'digit'.*did you mean 'digits'"):
        dataset_info("digit")


def test_import_and_metadata_do_not_load_heavy_modules():
    code = ("import sys, nnlab.data as d\n"
            "[d.dataset_info(n) for n in d.DATASETS]\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'pandas', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
