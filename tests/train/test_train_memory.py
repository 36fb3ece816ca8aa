"""Runs in one process do not keep each other's traced graphs alive (the sweep worker's loop)."""

from __future__ import annotations

import gc

import pytest

from nnlab.spec import Spec
from nnlab.train import run_spec
from nnlab.train._env import _gradient_registry, keras

pytestmark = pytest.mark.xdist_group("train")


def _custom_gradients() -> int:
    registry = _gradient_registry()
    assert registry is not None, "TensorFlow's gradient registry moved: update nnlab.train._env"
    return sum(name.startswith("CustomGradient-") for name in registry)


def test_repeated_runs_leave_no_gradient_registrations_behind(write_spec):
    spec = Spec.from_yaml(write_spec("""
        name: mem
        data: {dataset: digits_flat, train_size: 200}
        model: {depth: 2, width: 8}
        train: {epochs: 2}
    """))
    run_spec(spec, None, figures=False)  # TensorFlow's own first-use registrations happen here
    keras().backend.clear_session()
    gc.collect()
    before = _custom_gradients()
    for seed in range(3):
        result = run_spec(spec.with_values({"train.seed": seed}), None, figures=False)
        assert result.status == "completed"
        keras().backend.clear_session()
        gc.collect()
    assert _custom_gradients() == before
