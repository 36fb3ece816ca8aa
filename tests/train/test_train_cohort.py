"""Cohorts (``nnlab.train._cohort``): K runs of one graph trained as one computation, each member equal to
the same run trained alone."""

from __future__ import annotations

import math

import pytest

from nnlab.spec import Spec
from nnlab.train import execute, prepare
from nnlab.train._cohort import ENGINE, blocker, cohort_size, finish, form_cohort
from nnlab.train._reuse import ModelCache

CASES = {
    "mlp": "data: {dataset: digits_flat, train_size: 160}\n"
           "model: {family: mlp, depth: 3, width: 16, normalization: batch, residual: true, dropout: 0.2, l2: 0.001}",
    "cnn": "data: {dataset: digits, train_size: 160, augment: [shift]}\n"
           "model: {family: cnn, depth: 2, width: 4, normalization: batch, dropout: 0.1}",
    "rnn": "data: {dataset: parity, n_samples: 200, seq_len: 8}\nmodel: {family: rnn, depth: 1, width: 8}",
    "transformer": "data: {dataset: parity, n_samples: 200, seq_len: 8}\n"
                   "model: {family: transformer, depth: 1, width: 16, dropout: 0.1}",
}
REL = 1e-5


def _spec(write_spec, family: str, train: str = "", epochs: int = 4) -> Spec:
    return Spec.from_yaml(write_spec(f"name: cohort\n{CASES[family]}\n"
                                     f"train: {{epochs: {epochs}, batch_size: 32{train}}}\n"))


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=REL, abs_tol=1e-7) for x, y in zip(a, b, strict=True))


def _members(spec: Spec, n: int = 3) -> list[Spec]:
    shared_split = bool(spec.data.augment)  # an augmentation standardizes with its split's statistics
    return [spec.with_values({"train.seed": 10 + i, "data.seed": 1 if shared_split else 1 + i}) for i in range(n)]


def _cohort(specs: list[Spec], cache: ModelCache | None = None, between_epochs=None) -> list:
    cohort = form_cohort(specs, cache)
    assert cohort is not None
    results = cohort.train(between_epochs)
    return [finish(cohort, i, r) if r is not None else None for i, r in enumerate(results)]


def _alone(spec: Spec):
    return execute(prepare(spec), None, figures=False)


def _same(alone, member, status: str = "completed") -> None:
    assert member.status == alone.status == status
    assert member.epochs == alone.epochs
    assert set(member.history) == set(alone.history)
    for key, series in alone.history.items():
        assert _close(series, member.history[key]), (key, series, member.history[key])
    assert member.best_epoch == alone.best_epoch
    for key, value in alone.metrics.items():
        # a gap is a difference of two values each within REL: compared at REL of its operands' scale
        absolute = REL * abs(member.metrics.get("val_loss", 1.0)) if key.startswith("gap_") else 1e-7
        assert math.isclose(value, member.metrics[key], rel_tol=REL, abs_tol=absolute), key


@pytest.mark.parametrize("family", list(CASES))
def test_a_member_equals_its_run_alone(write_spec, family):
    """Three members (their own weights, splits, orders, dropout draws): every logged series per epoch and
    every final metric equal the same run trained alone, within 1e-5 relative."""
    specs = _members(_spec(write_spec, family))
    members = _cohort(specs, ModelCache())
    for spec, member in zip(specs, members, strict=True):
        _same(_alone(spec), member)


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_per_member(write_spec, restore):
    """Patience 1 stops members at different epochs; each keeps what its run alone keeps (the best epoch's
    weights, or its last epoch's), while the others train on."""
    spec = _spec(write_spec, "mlp", f", learning_rate: 0.05, early_stopping: 1, restore_best: {str(restore).lower()}",
                 epochs=12)
    specs = _members(spec)
    members = _cohort(specs)
    alone = [_alone(s) for s in specs]
    assert len({a.epochs for a in alone}) > 1  # the members stopped at different epochs
    for a, m in zip(alone, members, strict=True):
        _same(a, m)


def test_a_diverging_member_is_left_to_run_alone(write_spec):
    """A member whose loss explodes is not judged from the cohort: it comes back None (its run alone may
    stop in the middle of an epoch, which a cohort does not reproduce) and its NaNs leave the other
    member as it would have been."""
    import numpy as np

    spec = _spec(write_spec, "mlp")
    specs = [spec.with_values({"train.seed": 1}), spec.with_values({"train.seed": 2})]
    cache = ModelCache()
    reference = _cohort(specs, cache)[0]
    engine = cache.probes(form_cohort(specs, cache).prepared.cache_key)[ENGINE][2]  # the one both use

    def blow_up(epoch: int) -> None:  # member 1's weights overflow after the first epoch
        if epoch == 0:
            for var in engine.tv:
                scale = np.ones(var.shape, dtype="float32")
                scale[1] = 1e30
                var.assign(var.value * scale)

    first, second = _cohort(specs, cache, blow_up)
    assert second is None and first is not None
    for key, series in reference.history.items():
        assert _close(series, first.history[key]), key


@pytest.mark.parametrize("optimizer, schedule", [("adam", "none"), ("sgd", "step"), ("momentum", "warmup_cosine"),
                                                 ("adamw", "cosine"), ("rmsprop", "exponential"), ("nadam", "none")])
def test_members_at_their_own_learning_rates_equal_their_runs_alone(write_spec, optimizer, schedule):
    """Tune trials of a cell differ in the learning rate: members at rates 0.001, 0.005 and 0.03 (the optimizer
    steps at rate 1, each member moves by its rate times that step), under every optimizer, with and without a
    schedule, each equal its run alone."""
    spec = _spec(write_spec, "mlp", f", optimizer: {optimizer}, schedule: {schedule}", epochs=3)
    specs = [s.with_values({"train.learning_rate": rate}) for s, rate in zip(_members(spec), (0.001, 0.005, 0.03), strict=True)]
    members = _cohort(specs, ModelCache())
    assert len({m.history["loss"][-1] for m in members}) == 3
    for s, member in zip(specs, members, strict=True):
        _same(_alone(s), member)


def test_runs_that_cannot_share_a_cohort_train_alone(write_spec):
    spec = _spec(write_spec, "mlp")
    assert form_cohort([spec, spec.with_values({"model.width": 8, "train.seed": 5})]) is None  # another graph
    clipped = spec.with_values({"train.clipnorm": 1.0})
    assert blocker(clipped) is not None and form_cohort([clipped, clipped.with_values({"train.seed": 3})]) is None
    assert blocker(spec) is None and form_cohort([spec, spec.with_values({"train.seed": 5})]) is not None


def test_smaller_cohorts_share_one_engine_and_trace(write_spec):
    """An engine for 4 members serves cohorts of 1 and 3 (the first slices; the rest are never read), traced
    once, and each member equals its run alone: a cell's tune trials and confirm repeats use one trace."""
    spec = _spec(write_spec, "mlp", epochs=3)
    cache = ModelCache()
    specs = _members(spec, 4)
    lone = form_cohort(specs[:1], cache, capacity=4)
    engine = lone.engine
    assert engine.capacity == 4
    lone_result = finish(lone, 0, lone.train()[0])
    three = _cohort(specs[1:], cache)
    assert cache.probes(lone.prepared.cache_key)[ENGINE] == {4: engine}
    assert engine.train_epoch.experimental_get_tracing_count() == 1
    for s, member in zip(specs, [lone_result, *three], strict=True):
        _same(_alone(s), member)


@pytest.mark.parametrize("early_stopping", [None, 2])
def test_a_pruned_member_equals_its_pruned_run_alone(write_spec, early_stopping):
    """A hook that prunes member 1 after its second epoch (as a tune trial's pruner would): the member
    stops there, pruned, and keeps what its run alone keeps (that epoch's weights, or under early stopping
    the best so far), while the others train on."""
    es = f", early_stopping: {early_stopping}" if early_stopping else ""
    spec = _spec(write_spec, "mlp", f", learning_rate: 0.05{es}", epochs=5)
    specs = _members(spec)
    seen: list[tuple[int, float]] = []

    def prune_after_second(epoch: int, metrics: dict) -> bool:
        seen.append((epoch, metrics["val_loss"]))
        return epoch == 1

    cohort = form_cohort(specs, ModelCache())
    results = cohort.train(hooks=[None, prune_after_second, None])
    members = [finish(cohort, i, r) for i, r in enumerate(results)]
    assert [m.status for m in members] == ["completed", "pruned", "completed"]
    assert [m.epochs for m in members] == [5, 2, 5] and len(seen) == 2
    pruned_alone = execute(prepare(specs[1]), None, figures=False, epoch_hook=lambda e, m: e == 1)
    assert pruned_alone.status == "pruned"
    _same(pruned_alone, members[1], status="pruned")
    for i in (0, 2):
        _same(_alone(specs[i]), members[i])


def test_cohort_size():
    assert cohort_size("auto", 3, gpu=False) == 3
    assert cohort_size("auto", 100, gpu=False) == 8
    assert cohort_size("auto", 100, gpu=True) == 32
    assert cohort_size(1, 5, gpu=False) == 1
    assert cohort_size(4, 2, gpu=False) == 2
    assert cohort_size("auto", 100, gpu=True, member_bytes=300 << 20) == 3  # 1 GiB of stacked data at most
    assert cohort_size(6, 100, gpu=True, member_bytes=300 << 20) == 6  # a number given is taken as given


def test_a_run_alone_after_a_cohort_compiles_its_template_and_equals_the_run_alone(write_spec):
    """A cohort keeps its template uncompiled (its engine computes); a run of the same graph after it (a
    diverged member, or the cell's next run) takes that model, compiles it, and computes what it computes
    alone. The cohort's engine stays with the model."""
    spec = _spec(write_spec, "mlp")
    cache = ModelCache()
    cohort = form_cohort(_members(spec), cache)
    key = cohort.prepared.cache_key
    cohort.train()
    assert not cache.compiled(key)
    after = spec.with_values({"train.seed": 42})
    prepared = prepare(after, cache)
    assert prepared.model is cohort.prepared.model and not prepared.reused
    _same(_alone(after), execute(prepared, None, figures=False))
    assert cache.compiled(key) and ENGINE in cache.probes(key) and cache.builds == 1


def test_a_regression_member_equals_its_run_alone(write_spec):
    """Regression: loss, mae and mse per epoch, and the extra split outside the training range with its
    ratios over the test split, as the runs alone record them."""
    spec = Spec.from_yaml(write_spec(
        "name: cohort\ndata: {dataset: function, function: sin, n_samples: 300, noise: 0.05, x_range: [-1.0, 1.0], "
        "ood_range: [-2.0, 2.0]}\nmodel: {family: mlp, depth: 2, width: 16, dropout: 0.1}\n"
        "train: {epochs: 4, batch_size: 32, early_stopping: 2}\n"))
    specs = _members(spec, 2)
    members = _cohort(specs)
    for s, member in zip(specs, members, strict=True):
        alone = _alone(s)
        assert "ood_mse_ratio" in alone.metrics and "train_eval_mae" in alone.history
        _same(alone, member)
