"""A model kept between runs (``nnlab.train._reuse``): a run that starts from it computes what the same run
computes alone, and its train step is traced once for all of them."""

from __future__ import annotations

import math

import pytest

from nnlab.spec import Spec
from nnlab.train import execute, prepare
from nnlab.train._reuse import ModelCache

CASES = {
    "mlp": "data: {dataset: digits_flat, train_size: 160}\n"
           "model: {family: mlp, depth: 3, width: 16, normalization: batch, residual: true, dropout: 0.2}",
    "cnn": "data: {dataset: digits, train_size: 160, augment: [shift]}\n"
           "model: {family: cnn, depth: 2, width: 4, normalization: batch, dropout: 0.1}",
    "rnn": "data: {dataset: parity, n_samples: 200, seq_len: 8}\nmodel: {family: rnn, depth: 1, width: 8}",
    "transformer": "data: {dataset: parity, n_samples: 200, seq_len: 8}\n"
                   "model: {family: transformer, depth: 1, width: 16, dropout: 0.1}",
}


def _spec(write_spec, family: str, train: str = "") -> Spec:
    return Spec.from_yaml(write_spec(f"name: reuse\n{CASES[family]}\n"
                                     f"train: {{epochs: 3, batch_size: 32{train}}}\n"))


def _counting(prepared, traces: list[int]):
    """Count traces of the train step: the wrapper runs once per trace, never per step."""
    model = prepared.model
    if not getattr(model, "_counted", False):
        step = model.train_step

        def train_step(data):
            traces.append(1)
            return step(data)

        model.train_step = train_step
        model._counted = True
    return prepared


def _close(a: list[float], b: list[float], rel: float = 1e-6) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=rel, abs_tol=1e-9) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("family", list(CASES))
def test_a_run_from_a_kept_model_equals_the_run_alone_and_traces_nothing(write_spec, family):
    """Three runs of one graph (new seeds, data splits and learning rates) through one cache: the second and
    third start from the first one's compiled model, and each equals the same run built and compiled alone,
    per epoch, in every logged series; the train step was traced once for the three."""
    spec = _spec(write_spec, family, ", early_stopping: 1")
    variants = [{"train.seed": 1, "data.seed": 1, "train.learning_rate": 0.01},
                {"train.seed": 2, "data.seed": 2, "train.learning_rate": 0.003},
                {"train.seed": 3, "data.seed": 3, "train.learning_rate": 0.03}]
    if spec.data.augment:  # the augmentation's standardization is the split's: one split for all three
        for values in variants:
            values["data.seed"] = 1
    cache, traces = ModelCache(), []
    kept = []
    for values in variants:
        prepared = _counting(prepare(spec.with_values(values), cache), traces)
        kept.append((prepared.reused, execute(prepared, None, figures=False)))
    cache_key = prepared.cache_key
    assert [reused for reused, _ in kept] == [False, True, True]
    assert len(traces) == 1 and cache.builds == 1 and cache.reuses == 2
    probes = cache.probes(cache_key)
    assert probes is not None and len(probes) == 1  # the diagnostics probe, traced once for the kept model
    cache.release()
    assert len(cache) == 0 and cache.probes(cache_key) is None  # dropped with it
    for values, (_, shared) in zip(variants[1:], kept[1:], strict=True):
        alone = execute(prepare(spec.with_values(values)), None, figures=False)
        assert shared.history.keys() == alone.history.keys()
        for key in alone.history:
            assert _close(shared.history[key], alone.history[key]), (key, shared.history[key], alone.history[key])
        assert shared.best_epoch == alone.best_epoch and shared.epochs == alone.epochs
        assert _close([shared.metrics["test_loss"]], [alone.metrics["test_loss"]])
    assert kept[1][1].history["val_loss"] != kept[2][1].history["val_loss"]  # the runs did differ


def test_a_pruned_or_diverged_run_leaves_nothing_to_the_next(write_spec):
    """A run stopped by its epoch hook after one epoch (a pruned trial), then one that diverges at a huge
    learning rate: the run after them still equals the same run alone."""
    spec = _spec(write_spec, "mlp")
    cache = ModelCache()
    stopped = execute(prepare(spec.with_values({"train.seed": 5}), cache), None, figures=False,
                      epoch_hook=lambda epoch, metrics: True)
    assert stopped.status == "pruned" and stopped.epochs == 1
    diverged = execute(prepare(spec.with_values({"train.seed": 6, "train.learning_rate": 900.0}), cache), None,
                       figures=False)
    prepared = prepare(spec.with_values({"train.seed": 7}), cache)
    assert prepared.reused
    shared = execute(prepared, None, figures=False)
    cache.release()
    alone = execute(prepare(spec.with_values({"train.seed": 7})), None, figures=False)
    assert diverged.status in ("diverged", "completed") and shared.status == "completed"
    for key in alone.history:
        assert _close(shared.history[key], alone.history[key]), key


@pytest.mark.parametrize("change, reused", [
    ({"model.width": 12}, False),  # another graph
    ({"data.seed": 4, "data.augment": ["shift"]}, False),
    ({"train.seed": 4, "data.augment": ["shift"]}, True),
    ({"train.optimizer": "sgd"}, False),
    ({"train.seed": 9, "data.seed": 4, "train.learning_rate": 0.02}, True),
])
def test_only_seeds_and_a_constant_rate_share_a_model(write_spec, change, reused):
    """Anything else builds anew, also another data split when an augmentation standardizes with the
    split's statistics (constants of the graph)."""
    spec = _spec(write_spec, "cnn" if "data.augment" in change else "mlp")
    cache = ModelCache()
    execute(prepare(spec, cache), None, figures=False)
    assert prepare(spec.with_values(change), cache).reused is reused
    cache.release()


def test_a_worker_returns_to_a_cell_it_left_without_building_again(write_spec):
    """Two cells alternating (a worker that starts the next cell's tuning, then comes back for the first
    cell's confirm runs): each is built once, and a run of the first cell after the second cell's run
    still equals the same run alone."""
    spec = _spec(write_spec, "mlp", ", early_stopping: 1")
    cells = [{}, {"model.depth": 2}]
    cache, traces = ModelCache(), []
    results = []
    for repeat in range(2):
        for cell in cells:
            prepared = _counting(prepare(spec.with_values({**cell, "train.seed": 10 + repeat}), cache), traces)
            results.append((prepared.reused, execute(prepared, None, figures=False)))
    assert [reused for reused, _ in results] == [False, False, True, True]
    assert cache.builds == 2 and cache.reuses == 2 and cache.evictions == 0 and len(traces) == 2
    cache.release()
    alone = execute(prepare(spec.with_values({"train.seed": 11})), None, figures=False)
    shared = results[2][1]
    for key in alone.history:
        assert _close(shared.history[key], alone.history[key]), key


def test_the_least_recently_used_model_makes_room(write_spec):
    """With room for two, a third graph drops the one used longest ago; the other stays kept."""
    spec = _spec(write_spec, "mlp")
    cache = ModelCache(capacity=2)
    for depth in (1, 2, 3):
        execute(prepare(spec.with_values({"model.depth": depth}), cache), None, figures=False)
    assert len(cache) == 2 and cache.evictions == 1 and cache.builds == 3
    assert not prepare(spec.with_values({"model.depth": 1}), cache).reused  # dropped
    assert cache.evictions == 2  # room made for depth 1 again: depth 2 went
    assert prepare(spec.with_values({"model.depth": 3, "train.seed": 5}), cache).reused
    cache.release()


def test_under_a_schedule_the_rate_is_part_of_the_graph(write_spec):
    """A schedule's starting rate is a constant of the traced step: another rate builds anew, the same one
    reuses."""
    spec = _spec(write_spec, "mlp", ", schedule: cosine")
    cache = ModelCache()
    execute(prepare(spec, cache), None, figures=False)
    assert not prepare(spec.with_values({"train.learning_rate": 0.02}), cache).reused
    execute(prepare(spec.with_values({"train.learning_rate": 0.02}), cache), None, figures=False)
    assert prepare(spec.with_values({"train.learning_rate": 0.02, "train.seed": 3}), cache).reused
    cache.release()
