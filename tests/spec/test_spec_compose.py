"""extends, profiles, dotted overrides, sweep and expect validation."""

from __future__ import annotations

import pytest

from nnlab.spec import Spec, SpecError, TuneChoices, TuneRange


def test_extends_deep_merges_relative_to_the_file(write_spec):
    write_spec("""
        data:
          dataset: digits_flat
        model:
          depth: 3
          width: 32
        train:
          epochs: 4
    """, "bases/base.yaml")
    path = write_spec("""
        name: child
        extends: bases/base.yaml
        model:
          width: 8
    """, "child.yaml")
    spec = Spec.from_yaml(path)
    assert (spec.model.depth, spec.model.width, spec.train.epochs) == (3, 8, 4)


def test_several_extends_later_wins(write_spec):
    write_spec("model:\n  depth: 3\n  width: 5\n", "a.yaml")
    write_spec("model:\n  depth: 4\n", "b.yaml")
    path = write_spec("name: c\nextends: [a.yaml, b.yaml]\ndata:\n  dataset: iris\n", "c.yaml")
    spec = Spec.from_yaml(path)
    assert (spec.model.depth, spec.model.width) == (4, 5)


def test_errors_in_a_base_point_into_the_base(write_spec):
    write_spec("model:\n  depth: many\n", "base.yaml")
    path = write_spec("name: c\nextends: base.yaml\n", "c.yaml")
    with pytest.raises(SpecError, match=r"base.yaml:2: model.depth: must be an integer"):
        Spec.from_yaml(path)


def test_extends_cycle(write_spec):
    write_spec("extends: b.yaml\nname: a\n", "a.yaml")
    path = write_spec("extends: a.yaml\nname: b\n", "b.yaml")
    with pytest.raises(SpecError, match="extends cycle") as info:
        Spec.from_yaml(path)
    assert ":1: extends:" in str(info.value)


def test_extends_missing_file(write_spec):
    path = write_spec("name: a\nextends: nowhere.yaml\n")
    with pytest.raises(SpecError, match=r"spec.yaml:2: extends: .*does not exist"):
        Spec.from_yaml(path)


def test_profile_applies_dotted_and_nested_keys(write_spec):
    path = write_spec("""
        name: p
        data: {dataset: iris}
        train: {epochs: 50}
        profiles:
          quick:
            train.epochs: 2
            model:
              width: 4
    """)
    assert Spec.from_yaml(path).train.epochs == 50
    quick = Spec.from_yaml(path, profile="quick")
    assert (quick.train.epochs, quick.model.width) == (2, 4)


def test_unknown_profile_lists_profiles(write_spec):
    path = write_spec("name: p\ndata: {dataset: iris}\nprofiles:\n  quick: {train.epochs: 1}\n")
    with pytest.raises(SpecError, match="unknown profile 'quik'.*quick"):
        Spec.from_yaml(path, profile="quik")


def test_bad_value_in_profile_points_at_profile_line(write_spec):
    path = write_spec("name: p\ndata: {dataset: iris}\nprofiles:\n  quick:\n    train.epochs: zero\n")
    with pytest.raises(SpecError, match=r"spec.yaml:5: train.epochs: must be an integer"):
        Spec.from_yaml(path, profile="quick")


def test_overrides_parse_yaml_values(write_spec):
    path = write_spec("name: o\ndata: {dataset: iris}\n")
    spec = Spec.from_yaml(path, ["model.depth=8", "model.residual=true", "train.learning_rate=0.05",
                                 "sweep.grid.model.width=[4, 8]"])
    assert spec.model.depth == 8 and spec.model.residual is True
    assert spec.train.learning_rate == 0.05
    assert spec.sweep.grid == {"model.width": [4, 8]}


@pytest.mark.parametrize("override, fragment", [
    ("model.depth", "must look like key=value"),
    ("nosuch.depth=3", "unknown section 'nosuch'"),
    ("model.depth.x=3", "not a mapping"),
    ("model.depth=[1", "YAML syntax error"),
])
def test_bad_overrides(write_spec, override, fragment):
    path = write_spec("name: o\ndata: {dataset: iris}\nmodel: {depth: 2}\n")
    with pytest.raises(SpecError, match=fragment):
        Spec.from_yaml(path, [override])


def test_sweep_shapes(write_spec):
    path = write_spec("""
        name: s
        data: {dataset: iris}
        sweep:
          grid:
            model.depth: [1, 2, 4]
            model.activation: [relu, tanh]
          tune:
            train.learning_rate: {low: 1.0e-4, high: 1.0e-1, log: true}
            train.optimizer: {choices: [adam, sgd]}
            model.width: {low: 4, high: 64, step: 4}
          trials: 3
          seeds: 2
          objective: val_accuracy
    """)
    spec = Spec.from_yaml(path)
    assert isinstance(spec.sweep.tune["train.learning_rate"], TuneRange)
    assert isinstance(spec.sweep.tune["train.optimizer"], TuneChoices)
    assert spec.sweep.tune["model.width"].is_int
    assert spec.sweep.resolved_direction == "maximize"


@pytest.mark.parametrize("sweep, fragment", [
    ("grid: {model.dpth: [1, 2]}", "did you mean 'depth'"),
    ("grid: {model.depth: [1, two]}", "value 'two' for model.depth"),
    ("grid: {sweep.seeds: [1]}", "must name a key in data, model or train"),
    ("grid: {name: [a]}", "linked factor"),
    ("grid: {model.depth: [1, 1]}", "twice"),
    ("tune: {train.learning_rate: {low: 1, high: 0.1}}\n  trials: 2", "low < high"),
    ("tune: {train.learning_rate: {low: 0, high: 0.1, log: true}}\n  trials: 2", "low > 0"),
    ("tune: {model.depth: {low: 1, high: 4.5}}\n  trials: 2", "integer"),
    ("tune: {train.optimizer: {choices: [adam, adamm]}}\n  trials: 2", "unknown optimizer 'adamm'"),
    ("tune: {train.learning_rate: {low: 0.001, high: 0.1}}", "sweep.trials must be >= 1"),
    ("sampler: bayes", "unknown sampler"),
    ("pruner: early", "unknown pruner"),
    ("objective: val_acc", "did you mean 'val_accuracy'"),
])
def test_bad_sweeps(write_spec, sweep, fragment):
    path = write_spec(f"name: s\ndata: {{dataset: iris}}\nsweep:\n  {sweep}\n")
    with pytest.raises(SpecError, match=fragment) as info:
        Spec.from_yaml(path)
    assert str(info.value).startswith(str(path.name)) or ":" in str(info.value).split(" ")[0]


def test_expectations_both_forms(write_spec):
    path = write_spec("""
        name: e
        data: {dataset: iris}
        sweep:
          grid: {model.depth: [1, 8], model.residual: [false, true]}
          seeds: 3
        expect:
          - kind: compare
            metric: val_accuracy
            better: {model.residual: true}
            than: {model.residual: false}
            where: {model.depth: 8}
          - trend: {metric: val_loss, along: model.depth, should: increase}
        report: [depth]
    """)
    spec = Spec.from_yaml(path)
    assert [c.kind for c in spec.expect] == ["compare", "trend"]


@pytest.mark.parametrize("claim, fragment", [
    ("{kind: compare, metric: val_loss, better: {model.width: 8}, than: {model.depth: 1}}", "not a sweep.grid key"),
    ("{kind: compare, metric: val_loss, better: {model.depth: 3}, than: {model.depth: 1}}", "not one of the grid"),
    ("{kind: trend, metric: val_loss, along: model.width, should: increase}", "must be a sweep.grid key"),
    ("{kind: trend, metric: val_loss, along: model.depth, should: rise}", "one of: increase, decrease"),
    ("{kind: guess, metric: val_loss}", "kind"),
])
def test_bad_expectations(write_spec, claim, fragment):
    path = write_spec(f"name: e\ndata: {{dataset: iris}}\nsweep:\n  grid: {{model.depth: [1, 8]}}\n"
                      f"expect:\n  - {claim}\n")
    with pytest.raises(SpecError, match=fragment):
        Spec.from_yaml(path)


def test_with_values_revalidates(write_spec):
    spec = Spec.from_yaml(write_spec("name: w\ndata: {dataset: iris}\n"))
    assert spec.with_values({"model.depth": 5}).model.depth == 5
    with pytest.raises(SpecError, match="model.depth"):
        spec.with_values({"model.depth": -1})


def test_spec_hash_changes_with_content(write_spec):
    path = write_spec("name: h\ndata: {dataset: iris}\n")
    a = Spec.from_yaml(path)
    assert a.spec_hash() == Spec.from_yaml(path).spec_hash()
    assert a.spec_hash() != Spec.from_yaml(path, ["model.depth=3"]).spec_hash()


def test_linked_grid_factor_expands_to_labelled_cells(write_spec):
    from nnlab.spec import expand

    path = write_spec("""
        name: linked
        data: {dataset: iris}
        sweep:
          grid:
            model.depth: [2, 8]
            variant:
              - {label: plain, model.residual: false, model.normalization: none}
              - {label: resnet, model.residual: true, model.normalization: batch}
          seeds: 2
        expect:
          - compare: {metric: val_loss, better: {variant: resnet}, than: {variant: plain}, where: {model.depth: 8}}
          - bound: {metric: val_accuracy, above: 0.5}
    """)
    spec = Spec.from_yaml(path)
    cells = expand(spec.sweep.grid)
    assert [c.id for c in cells] == ["model.depth=2,variant=plain", "model.depth=2,variant=resnet",
                                     "model.depth=8,variant=plain", "model.depth=8,variant=resnet"]
    assert cells[3].values == {"model.depth": 8, "model.residual": True, "model.normalization": "batch"}
    assert cells[3].matches({"variant": "resnet", "model.depth": 8})
    applied = spec.with_values(cells[3].values)
    assert applied.model.residual and applied.model.normalization == "batch"


@pytest.mark.parametrize("variant, fragment", [
    ("[{model.residual: nope}]", "must be true or false"),
    ("[{model.resdual: true}]", "did you mean 'residual'"),
    ("[1, 2]", "linked factor"),
    ("[{model.residual: true}, {model.depth: 3}]", "same keys"),
    ("[{label: a, model.depth: 2}, {label: a, model.depth: 3}]", "distinct"),
])
def test_bad_linked_factors(write_spec, variant, fragment):
    path = write_spec(f"name: l\ndata: {{dataset: iris}}\nsweep:\n  grid:\n    variant: {variant}\n")
    with pytest.raises(SpecError, match=fragment):
        Spec.from_yaml(path)


def test_bound_needs_a_bound(write_spec):
    path = write_spec("name: b\ndata: {dataset: iris}\nexpect:\n  - {kind: bound, metric: val_loss}\n")
    with pytest.raises(SpecError, match="needs 'above', 'below'"):
        Spec.from_yaml(path)
