"""Runs in one process do not keep each other's traced graphs alive (the sweep worker's loop), and
the imported modules stay out of the garbage collector's full collections."""

from __future__ import annotations

import gc
import weakref

import pytest

from nnlab.spec import Spec
from nnlab.train import run_spec
from nnlab.train._env import _gradient_registry, freeze_imported, keras

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


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_imports_are_frozen_and_garbage_is_not():
    keras()
    assert gc.get_freeze_count() > 100_000  # TensorFlow's and Keras's modules
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle only the cyclic collector can free
    ref = weakref.ref(a)
    del a, b
    freeze_imported()
    assert ref() is None  # collected before the freeze, not kept for good
    later = _Node()
    later.other = later
    ref = weakref.ref(later)
    del later
    gc.collect()
    assert ref() is None  # objects made after the freeze are collected as usual
