"""Spec validation through the public entry point: every error is one located line."""

from __future__ import annotations

import re

import pytest

from nnlab.spec import Spec, SpecError

BASE = """
name: demo
data:
  dataset: digits_flat
  train_size: 0.5
model:
  family: mlp
  depth: 2
  width: 16
train:
  epochs: 2
"""


def load(write_spec, text, *overrides, profile=None):
    return Spec.from_yaml(write_spec(text), list(overrides), profile)


def error_of(write_spec, text, *overrides, profile=None) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(write_spec, text, *overrides, profile=profile)
    message = str(info.value)
    assert "\n" not in message
    assert re.match(r"^\S+:\d+: ", message), message
    return info.value


def test_valid_spec_resolves_defaults(write_spec):
    spec = load(write_spec, BASE)
    assert spec.model.depth == 2
    assert spec.data.val_fraction == 0.2 and spec.data.test_fraction == 0.2
    assert spec.train.optimizer == "adam"
    params = spec.flat_params()
    assert params["model.depth"] == 2 and params["data.dataset"] == "digits_flat"
    assert params["train.seed"] == 0


def test_unknown_key_says_did_you_mean_with_line(write_spec):
    err = error_of(write_spec, BASE.replace("  depth: 2", "  dpeth: 2"))
    assert err.line == 7
    assert err.key == "model.dpeth"
    assert "did you mean 'depth'" in str(err)


def test_unknown_top_level_section(write_spec):
    err = error_of(write_spec, BASE + "modle:\n  depth: 3\n")
    assert err.key == "modle" and "did you mean 'model'" in str(err)


def test_wrong_type_names_rule_and_value(write_spec):
    err = error_of(write_spec, BASE.replace("depth: 2", "depth: eight"))
    assert err.line == 7
    assert "model.depth: must be an integer >= 1" in str(err)
    assert "'eight'" in str(err)


def test_float_is_not_an_integer(write_spec):
    err = error_of(write_spec, BASE.replace("width: 16", "width: 16.5"))
    assert err.key == "model.width" and "integer" in str(err)


@pytest.mark.parametrize("override, key, fragment", [
    ("model.depth=0", "model.depth", ">= 1"),
    ("model.dropout=1.0", "model.dropout", "< 1.0"),
    ("data.label_noise=1.5", "data.label_noise", "<= 1.0"),
    ("train.learning_rate=0", "train.learning_rate", "> 0.0"),
    ("train.batch_size=-4", "train.batch_size", ">= 1"),
    ("data.train_size=0", "data.train_size", "fraction in (0, 1]"),
    ("data.train_size=1.5", "data.train_size", "fraction in (0, 1]"),
    ("model.l2=-1", "model.l2", ">= 0.0"),
    ("train.epochs=100000000000", "train.epochs", "<= 100000"),
])
def test_out_of_range(write_spec, override, key, fragment):
    err = error_of(write_spec, BASE, override)
    assert err.key == key
    assert fragment in str(err)


@pytest.mark.parametrize("override, kind, valid", [
    ("model.activation=relux", "activation", "sigmoid"),
    ("model.family=resnet", "model family", "transformer"),
    ("data.dataset=mnits", "dataset", "mnist"),
    ("train.optimizer=adm", "optimizer", "rmsprop"),
    ("model.initializer=xavier", "initializer", "he_normal"),
])
def test_unknown_registry_names_list_valid_ones(write_spec, override, kind, valid):
    err = error_of(write_spec, BASE, override)
    assert f"unknown {kind}" in str(err)
    assert "expected one of:" in str(err) and valid in str(err)


def test_literal_choices(write_spec):
    err = error_of(write_spec, BASE, "model.normalization=bn")
    assert "must be one of: none, batch, layer" in str(err)


def test_duplicate_key(write_spec):
    err = error_of(write_spec, BASE.replace("  depth: 2", "  depth: 2\n  depth: 3"))
    assert err.line == 8
    assert "duplicate key" in str(err) and "line 7" in str(err)


def test_yaml_syntax_error_is_located(write_spec):
    err = error_of(write_spec, BASE + "sweep:\n  grid: [1, 2\n")
    assert "YAML syntax error" in str(err)
    assert err.line >= 12


def test_top_level_must_be_mapping(write_spec):
    err = error_of(write_spec, "- a\n- b\n")
    assert "top level must be a mapping" in str(err) and "list" in str(err)


@pytest.mark.parametrize("text", ["", "   \n# only a comment\n"])
def test_empty_file(write_spec, text):
    err = error_of(write_spec, text)
    assert "empty" in str(err)


def test_python_tags_are_refused(write_spec):
    err = error_of(write_spec, BASE + "description: !!python/object/apply:os.system ['echo hi']\n")
    assert "not allowed" in str(err)
    assert err.line == 11


def test_alias_bomb_fails_fast(write_spec):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    err = error_of(write_spec, "\n".join(lines) + "\n")
    assert "alias" in str(err)


def test_binary_and_bad_encoding(tmp_path):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: x\n\x00\x01\x02")
    with pytest.raises(SpecError, match="binary"):
        Spec.from_yaml(binary)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: x\ndescription: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin.yaml:2: .*UTF-8"):
        Spec.from_yaml(latin)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="is a directory"):
        Spec.from_yaml(tmp_path)
    with pytest.raises(SpecError, match="not found"):
        Spec.from_yaml(tmp_path / "nope.yaml")


def test_unknown_study_name_lists_studies():
    with pytest.raises(SpecError, match="no study named 'no_such_study'"):
        Spec.from_yaml("no_such_study")


def test_bad_name_pattern(write_spec):
    err = error_of(write_spec, BASE.replace("name: demo", "name: ../../etc"))
    assert err.key == "name"


def test_dataset_option_not_accepted(write_spec):
    err = error_of(write_spec, BASE, "data.noise=0.3")
    assert err.key == "data.noise" and "not an option of dataset 'digits_flat'" in str(err)


def test_augment_needs_images(write_spec):
    err = error_of(write_spec, BASE, "data.augment=[shift]")
    assert err.key == "data.augment" and "image" in str(err)


def test_family_must_take_the_data_kind(write_spec):
    err = error_of(write_spec, BASE, "model.family=rnn")
    assert err.key == "model.family"


def test_transformer_heads_divide_width(write_spec):
    text = BASE.replace("digits_flat", "parity").replace("  train_size: 0.5\n", "")
    err = error_of(write_spec, text, "model.family=transformer", "model.heads=3")
    assert err.key == "model.heads"


def test_data_errors_found_while_loading_are_located(write_spec):
    from nnlab.train import prepare

    spec = load(write_spec, BASE, "data.train_size=100000")
    with pytest.raises(SpecError) as info:
        prepare(spec)
    assert re.match(r"^\S+spec.yaml:4: data.train_size: ", str(info.value))


def test_an_empty_list_is_a_param_only_where_the_sweep_sets_it(write_spec):
    images = BASE.replace("digits_flat", "digits").replace("family: mlp", "family: cnn")
    plain = load(write_spec, images)
    assert "data.augment" not in plain.flat_params(applicable=True)  # nothing set: nothing to say
    swept = load(write_spec, images + "sweep:\n  grid:\n    data.augment: [[], [shift]]\n")
    none_arm = swept.with_values({"data.augment": []}).flat_params(applicable=True)
    shift_arm = swept.with_values({"data.augment": ["shift"]}).flat_params(applicable=True)
    assert none_arm["data.augment"] == [] and shift_arm["data.augment"] == ["shift"]  # a report can select either


def test_a_family_option_no_run_reads_is_an_error(write_spec):
    err = error_of(write_spec, BASE.replace("  width: 16", "  width: 16\n  heads: 8"))
    assert err.key == "model.heads" and err.line == 9 and "family transformer only" in str(err)
    err = error_of(write_spec, BASE, "model.kernel_size=5")
    assert err.key == "model.kernel_size" and "family cnn only" in str(err)
    err = error_of(write_spec, BASE + "sweep:\n  trials: 2\n  tune:\n    model.ffn_multiplier: {low: 1, high: 4}\n")
    assert err.key == "model.ffn_multiplier"
    # its default value changes nothing either way, and a logged (resolved) spec carries every key
    assert load(write_spec, BASE.replace("  width: 16", "  width: 16\n  heads: 4")).model.heads == 4


def test_a_family_option_is_fine_where_some_cell_builds_that_family(write_spec):
    mixed = BASE.replace("digits_flat", "digits").replace("  width: 16", "  width: 16\n  cell: gru") + (
        "sweep:\n  grid:\n    arch:\n      - {label: dense, model.family: mlp}\n      - {label: rnn, model.family: rnn}\n"
        "profiles:\n  dense_only:\n    sweep.grid:\n      arch:\n        - {label: dense, model.family: mlp}\n")
    assert load(write_spec, mixed).model.cell == "gru"
    # a profile may narrow the grid to fewer families: the spec as written is what is checked
    assert load(write_spec, mixed, profile="dense_only").model.cell == "gru"
