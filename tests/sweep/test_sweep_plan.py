"""Cells, plans and run counts, through the spec's public entry point. No training, no stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_testkit import write_spec

from nnlab.errors import SpecError
from nnlab.spec import Spec
from nnlab.sweep import build_plan, cell_id, make_cells, sweep_identity
from nnlab.sweep._plan import describe_changes, structure_hash


def _plan(tmp_path: Path, sweep: dict, overrides: tuple[str, ...] = (), profile: str | None = None, **sections):
    path = write_spec(tmp_path, "p", sweep, **sections)
    return build_plan(Spec.from_yaml(path, list(overrides), profile), profile)


def test_cells_are_the_cross_product_in_grid_order() -> None:
    cells = make_cells({"model.depth": [1, 8], "model.activation": ["relu", "sigmoid"]})
    assert [c.id for c in cells] == [
        "model.depth=1,model.activation=relu", "model.depth=1,model.activation=sigmoid",
        "model.depth=8,model.activation=relu", "model.depth=8,model.activation=sigmoid"]
    assert cells[3].values == {"model.depth": 8, "model.activation": "sigmoid"}


def test_cell_id_is_stable_and_readable() -> None:
    factors = {"model.activation": "sigmoid", "model.depth": 8, "model.residual": True, "train.learning_rate": 0.001,
               "train.clipnorm": None}
    expected = "model.activation=sigmoid,model.depth=8,model.residual=true,train.learning_rate=0.001,train.clipnorm=null"
    assert cell_id(factors) == expected
    assert cell_id(dict(factors)) == expected  # same values, same id, on every call and in every process
    assert cell_id({}) == "default"
    assert [c.id for c in make_cells({})] == ["default"]
    # a linked factor (no dot) is named by its label and sets several keys
    linked = make_cells({"variant": [{"label": "plain", "model.residual": False},
                                     {"label": "resnorm", "model.residual": True, "model.normalization": "batch"}]})
    assert [c.id for c in linked] == ["variant=plain", "variant=resnorm"]
    assert linked[1].values == {"model.residual": True, "model.normalization": "batch"}


@pytest.mark.parametrize("sweep, cells, trials, seeds, total", [
    ({"grid": {"model.depth": [1, 2, 3]}, "seeds": 2}, 3, 0, 2, 6),  # grid only: cells x seeds
    ({"grid": {"model.depth": [1, 2]}, "tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1, "log": True}},
      "trials": 4, "seeds": 3}, 2, 4, 3, 14),  # tune + confirm
    ({"grid": {"model.depth": [1, 2], "model.residual": [True, False]},
      "tune": {"train.batch_size": {"choices": [16, 32]}}, "trials": 3, "seeds": 0}, 4, 3, 0, 12),  # pure search
    ({"seeds": 5}, 1, 0, 5, 5),  # no grid, no tune: the spec itself, 5 seeds
])
def test_run_counts(tmp_path: Path, sweep: dict, cells: int, trials: int, seeds: int, total: int) -> None:
    plan = _plan(tmp_path, sweep)
    assert (len(plan.cells), plan.trials, plan.seeds, plan.total_runs) == (cells, trials, seeds, total)
    assert plan.total_runs == len(plan.cells) * (plan.trials + plan.seeds)


def test_study_names_and_identity(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "depthy", {"grid": {"model.depth": [1, 2]}, "seeds": 1},
                      profiles={"quick": {"train.epochs": 1}})
    plan = build_plan(Spec.from_yaml(path, [], "quick"), "quick")
    assert plan.sweep_id == sweep_identity("depthy", "quick") == "depthy@quick"
    assert plan.tune_study(plan.cells[1]) == "depthy@quick/model.depth=2/tune"
    assert plan.confirm_study(plan.cells[0]) == "depthy@quick/model.depth=1/confirm"
    assert build_plan(Spec.from_yaml(path), None).sweep_id == "depthy"


def test_confirm_seeds_are_distinct(tmp_path: Path) -> None:
    tuned = _plan(tmp_path, {"tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1}}, "trials": 2, "seeds": 3},
                  train={"seed": 7})
    assert [tuned.confirm_seed(i) for i in range(3)] == [1007, 1008, 1009]  # never the tuning seed
    grid_only = _plan(tmp_path, {"seeds": 3}, train={"seed": 7})
    assert [grid_only.confirm_seed(i) for i in range(3)] == [7, 8, 9]


@pytest.mark.parametrize("sweep, fragment", [
    ({"grid": {"model.depht": [1, 2]}, "seeds": 1}, "did you mean 'depth'"),
    ({"grid": {"depth": [1, 2]}, "seeds": 1}, "is a linked factor"),
    ({"grid": {"model.depth": [1, "eight"]}, "seeds": 1}, "value 'eight' for model.depth"),
    ({"grid": {"model.depth": [1, 1]}, "seeds": 1}, "lists 1 twice"),
    ({"tune": {"train.learning_rat": {"low": 0.001, "high": 0.1}}, "trials": 2}, "did you mean 'learning_rate'"),
    ({"tune": {"train.learning_rate": {"low": 0.1, "high": 0.001}}, "trials": 2}, "needs low < high"),
    ({"tune": {"model.depth": {"low": 1.5, "high": 4}}, "trials": 2}, "value 1.5 for model.depth"),
    ({"tune": {"train.learning_rate": {"low": 0.001, "high": 0.1}}, "trials": 0}, "sweep.trials must be >= 1"),
    ({"sampler": "tpee", "seeds": 1}, "did you mean 'tpe'"),
    ({"pruner": "medain", "seeds": 1}, "did you mean 'median'"),
])
def test_grid_and_tune_keys_are_validated(tmp_path: Path, sweep: dict, fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment) as info:
        _plan(tmp_path, sweep)
    assert str(info.value).startswith("p.yaml:") or ".yaml:" in str(info.value)


def test_a_cell_that_cannot_be_built_is_refused_with_its_id(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cell model.width=6,model.heads=4 .*divisible by model.heads"):
        _plan(tmp_path, {"grid": {"model.width": [6, 8], "model.heads": [2, 4]}, "seeds": 1},
              data={"dataset": "parity", "n_samples": 300}, model={"family": "transformer", "width": 8, "heads": 2})


def test_grid_sampler_needs_enumerable_ranges(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="sampler 'grid' needs choices or a range with a step"):
        _plan(tmp_path, {"tune": {"train.learning_rate": {"low": 1e-3, "high": 0.1, "log": True}}, "trials": 2,
                         "sampler": "grid"})
    plan = _plan(tmp_path, {"tune": {"model.width": {"low": 4, "high": 8, "step": 2}}, "trials": 2, "sampler": "grid"})
    assert plan.dims[0].grid_points() == [4, 6, 8]


def test_structure_hash_and_named_changes(tmp_path: Path) -> None:
    a = _plan(tmp_path, {"grid": {"model.depth": [1, 2]}, "seeds": 2})
    same = _plan(tmp_path, {"grid": {"model.depth": [1, 2]}, "seeds": 2}, ("train.learning_rate=0.001",))
    b = _plan(tmp_path, {"grid": {"model.depth": [1, 4]}, "seeds": 2}, ("model.width=16",))
    assert a.sweep_hash == same.sweep_hash == structure_hash(a.structure)
    assert a.sweep_hash != b.sweep_hash
    changes = [text for _, text in describe_changes(a.structure, b.structure)]
    assert changes == ["sweep.grid.model.depth changed from [1, 2] to [1, 4]", "model.width changed from 8 to 16"]
    # a grid key's base value does not matter: every cell overrides it
    c = _plan(tmp_path, {"grid": {"model.depth": [1, 2]}, "seeds": 2}, ("model.depth=5",))
    assert c.sweep_hash == a.sweep_hash


def test_keys_added_later_leave_a_sweeps_identity_and_seeds_unchanged_at_their_default(tmp_path: Path) -> None:
    sweep = {"grid": {"model.depth": [1, 2]}, "seeds": 2, "seed_keys": ["train.seed"]}
    # data and model keys added since, at the values that reproduce their old behaviour
    legacy = {"data": {"standardize": True, "standardize_fit": "train", "augment_space": "standardized"},
              "model": {"downsample": "alternate"}}
    before = _plan(tmp_path, sweep, **legacy)
    # the hash this sweep had before train.precision, train.jit_compile and sweep.seed_keys existed: a sweep
    # started then resumes (seed_keys at the value that repeats its old confirm runs), and its cells'
    # sampler seeds (derived from the hash) draw the same trials
    assert before.sweep_hash == "53e9464d8f3fa902"
    explicit = _plan(tmp_path, sweep, ("train.precision=float32", "train.jit_compile=auto"), **legacy)
    assert explicit.sweep_hash == before.sweep_hash
    mixed = _plan(tmp_path, sweep, ("train.precision=mixed_bfloat16",), **legacy)
    assert mixed.sweep_hash != before.sweep_hash
    changes = [text for _, text in describe_changes(before.structure, mixed.structure)]
    assert changes == ['train.precision was added ("mixed_bfloat16")']


def test_the_new_seed_keys_default_is_not_mixed_into_an_old_sweep(tmp_path: Path) -> None:
    old = _plan(tmp_path, {"grid": {"model.depth": [1, 2]}, "seeds": 2, "seed_keys": ["train.seed"]})
    new = _plan(tmp_path, {"grid": {"model.depth": [1, 2]}, "seeds": 2})
    assert new.spec.sweep.seed_keys == ["train.seed", "data.seed"]
    assert new.sweep_hash != old.sweep_hash
    changes = [text for _, text in describe_changes(old.structure, new.structure)]
    assert changes == ['sweep.seed_keys changed from ["train.seed"] to ["train.seed", "data.seed"]']


def test_repeat_k_sets_every_seed_key_alike_in_every_cell(tmp_path: Path) -> None:
    plan = _plan(tmp_path, {"grid": {"model.depth": [1, 2]}, "seeds": 3}, ("data.seed=7",))
    per_cell = [[plan.repeat_values(cell, k) for k in range(3)] for cell in plan.cells]
    assert per_cell[0] == per_cell[1]
    assert [v["data.seed"] for v in per_cell[0]] == [7, 8, 9]
    assert [v["train.seed"] for v in per_cell[0]] == [plan.confirm_seed(k) for k in range(3)]
