"""The data and model keys of fair studies through the spec's entry point: values, errors, hashes."""

from __future__ import annotations

import re

import pytest

from nnlab.errors import SpecError
from nnlab.spec import Spec

BASE = """
name: keys
data: {dataset: digits, train_size: 50}
model: {family: cnn, depth: 2, width: 4}
train: {epochs: 1}
"""
# what reproduces the pipeline from before the keys; such a spec keeps the hash it had then
LEGACY = ["data.standardize=true", "data.standardize_fit=train", "data.augment_space=standardized",
          "model.downsample=alternate"]


def load(write_spec, *overrides: str) -> Spec:
    return Spec.from_yaml(write_spec(BASE), list(overrides))


def error_of(write_spec, *overrides: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(write_spec, *overrides)
    assert re.match(r"^\S+:\d+: ", str(info.value)), str(info.value)
    return info.value


def test_defaults(write_spec):
    spec = load(write_spec)
    assert (spec.data.standardize, spec.data.standardize_fit, spec.data.augment_space) == ("feature", "pool", "raw")
    assert (spec.data.shift, spec.data.rotation, spec.data.zoom, spec.data.noise_std) == (0.125, 10.0, 0.1, 0.1)
    assert spec.data.canvas is None and spec.model.downsample == "cover"


@pytest.mark.parametrize(("override", "key", "message"), [
    ("data.standardize=pixel", "data.standardize", "must be one of none, feature, global (or true, false)"),
    ("data.standardize_fit=pol", "data.standardize_fit", "expected one of: pool, train; did you mean 'pool'"),
    ("data.augment_space=pixels", "data.augment_space", "expected one of: raw, standardized"),
    ("model.downsample=halv", "model.downsample", "expected one of: cover, halve, alternate; did you mean"),
    ("data.shift=0", "data.shift", "> 0.0"),
    ("data.rotation=360", "data.rotation", "<= 180"),
    ("data.zoom=1", "data.zoom", "< 1"),
    ("data.noise_std=-0.1", "data.noise_std", "> 0"),
    ("data.canvas=24", "data.canvas", "is not an option of dataset 'digits'"),
])
def test_bad_values_are_located_errors(write_spec, override, key, message):
    err = error_of(write_spec, override)
    assert err.key == key and message in str(err), str(err)


def test_canvas_is_an_option_of_digits_shifted(write_spec):
    from nnlab.data import load_dataset

    spec = load(write_spec, "data.dataset=digits_shifted", "data.canvas=24")
    assert load_dataset(spec.data).info.input_shape == (24, 24, 1)
    with pytest.raises(SpecError, match=r"data.canvas: must be an integer in \[8, 128\]"):
        load_dataset(load(write_spec, "data.dataset=digits_shifted", "data.canvas=4").data)


def test_true_and_false_are_kept_as_written(write_spec):
    assert load(write_spec, "data.standardize=true").data.standardize is True
    assert load(write_spec, "data.standardize=false").data.standardize is False
    assert load(write_spec, "data.standardize=global").data.standardize == "global"


def test_legacy_values_leave_the_hash_alone_and_new_defaults_count(write_spec):
    legacy = load(write_spec, *LEGACY)
    assert legacy.spec_hash() == Spec.from_dict(_before(legacy)).spec_hash()
    hashes = {load(write_spec, *[o for o in LEGACY if not o.startswith(key)]).spec_hash()
              for key in ("data.standardize_fit", "data.augment_space", "model.downsample")}
    assert len(hashes) == 3 and legacy.spec_hash() not in hashes


def test_strengths_and_canvas_count_only_away_from_their_defaults(write_spec):
    plain = load(write_spec).spec_hash()
    assert load(write_spec, "data.shift=0.125", "data.noise_std=0.1").spec_hash() == plain
    assert load(write_spec, "data.shift=0.25").spec_hash() != plain
    assert load(write_spec, "data.noise_std=0.2").spec_hash() != plain


def _before(spec: Spec) -> dict:
    """The spec as a dict without any key added for fair studies (as an old spec was written)."""
    dumped = spec.model_dump(mode="json", include={"name", "data", "model", "train", "sweep"})
    for key in ("standardize_fit", "augment_space", "shift", "rotation", "zoom", "noise_std", "canvas"):
        dumped["data"].pop(key)
    dumped["model"].pop("downsample")
    dumped["data"]["standardize"] = True
    return {**dumped, "data": {**dumped["data"], "standardize_fit": "train", "augment_space": "standardized"},
            "model": {**dumped["model"], "downsample": "alternate"}}
