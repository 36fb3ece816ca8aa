"""Run params read back by the type the spec declares: every kind of field round-trips through the text
the tracker logs, strings stay strings, and keys the schema does not know stay text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nnlab.spec import Spec, param_value
from nnlab.tracking._mlflow import _param_value as logged  # the text a run's param is stored as

# a spec that sets a field of every kind away from its default
RICH = {
    "name": "typed",
    "data": {"dataset": "csv", "path": "runs/2024.csv", "target": "8", "classes": [0, 3], "train_size": 0.5,
             "standardize": "global"},
    "model": {"depth": 7, "residual": True, "normalization": "batch", "l2": 0, "dropout": 0.25},
    "train": {"learning_rate": 1e-5, "early_stopping": 4, "steps_per_execution": 4, "jit_compile": False,
              "clipnorm": 1.5, "precision": "mixed_bfloat16",
              "pretrain": {"epochs": 3, "freeze": True, "learning_rate": 0.01, "classes": [1, 2]}},
}
IMAGES = {
    "name": "images",
    "data": {"dataset": "digits", "augment": ["flip", "shift"], "standardize": True, "train_size": 300},
    "train": {"jit_compile": "auto", "steps_per_execution": "auto"},
}
SWEEP = {
    "name": "swept",
    "sweep": {"grid": {"model.depth": [1, 4], "data.augment": [[], ["flip"]]},
              "tune": {"train.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
                       "model.activation": {"choices": ["relu", "tanh"]}},
              "trials": 3, "seeds": 2, "direction": "maximize", "objective": "val_accuracy"},
    "data": {"dataset": "digits"},
}


def frozen(value: Any) -> Any:
    """A spec value in the form params read back in: lists as tuples."""
    return tuple(frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def frozen_model(dumped: dict[str, Any]) -> dict[str, Any]:
    """A dumped model (tune range) in the form params read back in."""
    return {key: frozen(value) for key, value in dumped.items()}


def assert_same_typed(got: Any, want: Any) -> None:
    """Equal, and of the same type all the way down (True is not 1, 1.0 is not 1, "8" is not 8)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, tuple):
        assert len(got) == len(want), (got, want)
        for g, w in zip(got, want, strict=True):
            assert_same_typed(g, w)
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), (got, want)
        for key in want:
            assert_same_typed(got[key], want[key])
    else:
        assert got == want, (got, want)


@pytest.mark.parametrize("body", [RICH, IMAGES, SWEEP], ids=lambda body: body["name"])
def test_every_param_reads_back_as_the_spec_holds_it(body: dict[str, Any]) -> None:
    spec = Spec.from_dict(body)
    params = spec.flat_params()
    kinds = {type(v) for v in params.values()}
    assert {int, float, bool, str, list, type(None)} <= kinds  # the spec really spans every kind
    for key, value in params.items():
        texts = ["None", "null"] if value is None else [logged(value)]
        for text in texts:
            assert_same_typed(param_value(key, text), frozen(value))


def test_a_string_field_that_looks_like_a_number_stays_a_string() -> None:
    spec = Spec.from_dict(RICH)
    assert spec.data.target == "8"
    assert_same_typed(param_value("data.target", logged(spec.data.target)), "8")
    assert_same_typed(param_value("data.function", "1e-3"), "1e-3")
    assert_same_typed(param_value("data.path", "2024"), "2024")


@pytest.mark.parametrize(("key", "text", "want"), [
    ("train.learning_rate", "1e-3", 1e-3),  # written by hand rather than by str()
    ("train.learning_rate", "0.001", 0.001),
    ("model.l2", "1", 1.0),  # a float field whose text is a whole number is still a float
    ("model.depth", "8", 8),
    ("model.residual", "true", True),  # JSON's spelling
    ("model.residual", "False", False),
    ("data.train_size", "100", 100),  # int | float: each kind keeps its own
    ("data.train_size", "0.25", 0.25),
    ("data.standardize", "True", True),  # str | bool
    ("data.standardize", "none", "none"),
    ("train.jit_compile", "auto", "auto"),  # bool | Literal["auto"]
    ("train.jit_compile", "True", True),
    ("train.steps_per_execution", "16", 16),  # int | Literal["auto"]
    ("model.normalization", "layer", "layer"),  # Literal
    ("sweep.direction", "minimize", "minimize"),
    ("data.augment", "['rotate', 'zoom']", ("rotate", "zoom")),
    ("data.augment", "[]", ()),
    ("data.x_range", "[-2.0, 2.0]", (-2.0, 2.0)),
    ("train.pretrain.epochs", "12", 12),  # nested section
    ("train.pretrain.freeze", "True", True),
    ("train.pretrain.classes", "[4, 5]", (4, 5)),
    ("data.n_train", "1437", 1437),  # logged by the runner beside the spec keys
    ("sweep.cells", "6", 6),  # logged by a sweep's parent
])
def test_text_reads_as_the_declared_type(key: str, text: str, want: Any) -> None:
    assert_same_typed(param_value(key, text), want)


@pytest.mark.parametrize("key", ["train.early_stopping", "train.clipnorm", "data.target", "data.classes",
                                 "train.pretrain", "train.pretrain.learning_rate", "sweep.direction"])
@pytest.mark.parametrize("text", ["None", "null"])
def test_none_reads_back_where_the_field_is_optional(key: str, text: str) -> None:
    assert param_value(key, text) is None


@pytest.mark.parametrize("key", ["model.activation", "data.dataset", "sweep.objective"])
def test_none_text_of_a_required_string_field_stays_text(key: str) -> None:
    assert_same_typed(param_value(key, "None"), "None")


@pytest.mark.parametrize(("key", "text"), [
    ("lab.note", "8"),  # logged by something else
    ("model.hidden_units", "True"),  # a key of the model section this spec version does not have
    ("optimizer_lr", "0.01"),
    ("model.depth.inner", "3"),  # below a field that is not a section
    ("model.depth", "deep"),  # a known key whose text is not its type
    ("model.depth", "null"),  # depth may not be None
    ("sweep.seed_keys", "train.seed,data.seed"),  # the parent's comma-joined list
])
def test_text_the_schema_cannot_type_stays_text(key: str, text: str) -> None:
    assert_same_typed(param_value(key, text), text)


def test_absent_text_is_none() -> None:
    assert param_value("model.depth", None) is None


def test_a_sweep_parents_params_read_back() -> None:
    spec = Spec.from_dict(SWEEP)
    grid = param_value("sweep.grid", json.dumps({key: list(v) for key, v in spec.sweep.grid.items()}))
    assert_same_typed(grid, {key: frozen(v) for key, v in spec.sweep.grid.items()})
    tune = param_value("sweep.tune", json.dumps({key: p.model_dump(mode="json", exclude_none=True)
                                                 for key, p in spec.sweep.tune.items()}))
    assert tune == {key: frozen_model(p.model_dump()) for key, p in spec.sweep.tune.items()}
    assert_same_typed(param_value("sweep.trials", logged(spec.sweep.trials)), 3)
    assert_same_typed(param_value("sweep.objective", logged(spec.sweep.objective)), "val_accuracy")


def test_values_are_cached_per_key_and_text() -> None:
    first = param_value("data.augment", "['flip', 'noise']")
    assert param_value("data.augment", "['flip', 'noise']") is first
    assert param_value("data.target", "8") != param_value("model.depth", "8")
