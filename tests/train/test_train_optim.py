"""Optimizers and schedules: one registry each, every entry builds, and each reads only its own keys."""

from __future__ import annotations

import math

import pytest

from nnlab.spec import Spec
from nnlab.train._optim import OPTIMIZERS, SCHEDULES, build_optimizer, learning_rate

pytestmark = pytest.mark.xdist_group("train")

SPEC = {"name": "o", "data": {"dataset": "digits_flat"}, "train": {"epochs": 4, "learning_rate": 0.01}}


def _train(**values):
    return Spec.model_validate({**SPEC, "train": {**SPEC["train"], **values}}).train


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_builds_at_the_spec_rate(name):
    optimizer = build_optimizer(_train(optimizer=name, momentum=0.8, weight_decay=0.01), steps_per_epoch=10)
    assert math.isclose(float(optimizer.learning_rate), 0.01, rel_tol=1e-6)
    if name == "momentum":
        assert math.isclose(optimizer.momentum, 0.8)
    if name == "adamw":
        assert math.isclose(optimizer.weight_decay, 0.01)


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_starts_where_it_should_and_decays(name):
    rate = learning_rate(_train(schedule=name), steps_per_epoch=10)
    if name == "none":
        assert rate == 0.01
        return
    first, last = float(rate(0)), float(rate(39))
    assert first == (0.0 if name == "warmup_cosine" else pytest.approx(0.01))
    assert last < 0.01


def test_an_optimizers_own_keys_are_params_of_its_runs_only():
    def params(optimizer):
        spec = Spec.model_validate({**SPEC, "train": {**SPEC["train"], "optimizer": optimizer}})
        return spec.flat_params(applicable=True)

    assert "train.momentum" in params("momentum") and "train.weight_decay" not in params("momentum")
    assert "train.weight_decay" in params("adamw") and "train.momentum" not in params("adamw")
    assert not {"train.momentum", "train.weight_decay"} & set(params("adam"))
