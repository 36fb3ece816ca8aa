"""Both trackers provide the interface the runner writes through, with the same signatures."""

from __future__ import annotations

import inspect

import pytest

from nnlab.tracking import RunTracker
from nnlab.tracking._mlflow import Tracker
from nnlab.tracking._remote import RemoteTracker

METHODS = [name for name, member in vars(RunTracker).items()
           if callable(member) and not name.startswith("_")]


def test_the_interface_names_what_a_run_writes():
    assert {"start_run", "log_params", "log_inputs", "log_metrics", "log_epoch", "set_tags", "end_run"} <= set(METHODS)


@pytest.mark.parametrize("cls", [Tracker, RemoteTracker])
def test_each_tracker_provides_it(cls):
    assert issubclass(cls, RunTracker)
    for name in METHODS:
        want = list(inspect.signature(getattr(RunTracker, name)).parameters)
        got = list(inspect.signature(getattr(cls, name)).parameters)
        assert got == want, (cls.__name__, name)
