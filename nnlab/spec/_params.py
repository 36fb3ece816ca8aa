"""Run params read back by the type the spec declares for them.

A run logs its spec keys as MLflow params, each the text ``str(value)`` of the value
``Spec.flat_params`` gives (``"8"``, ``"0.001"``, ``"True"``, ``"['flip']"``; a sweep's parent also logs
``sweep.grid`` and ``sweep.tune`` as JSON). ``param_value`` is the inverse: it reads the text as the
type the schema declares for the key, so a string field stays a string even where its text looks like a
number, and a float field is a float even where it was written ``1`` or ``1e-3``.
"""

from __future__ import annotations

import ast
import functools
import json
import operator
import types
from collections.abc import Iterator
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from nnlab.spec._schema import Spec

# Params nnlab logs besides the spec's keys, with their types: the number of training examples a run
# used (``nnlab.train._runner.run_params``) and a sweep parent's number of cells.
EXTRA_PARAMS: dict[str, Any] = {"data.n_train": int, "sweep.cells": int}
NULL_TEXTS = ("None", "null")


def _bare(annotation: Any) -> Any:
    """``annotation`` without its constraints (ranges, lengths, patterns, union tags): the type alone."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return _bare(args[0])
    if origin is Union or origin is types.UnionType:
        return functools.reduce(operator.or_, [_bare(a) for a in args])
    if origin in (list, dict, tuple, set, frozenset) and args:
        return origin[tuple(_bare(a) for a in args)]
    return annotation  # a class, a Literal, Any


def _section(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (``TrainSpec.pretrain: PretrainSpec | None`` holds a ``PretrainSpec``)."""
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        inner = [a for a in get_args(annotation) if a is not type(None)]
    else:
        inner = [annotation] if origin is None else []
    if len(inner) == 1 and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
        return inner[0]
    return None


@functools.lru_cache(maxsize=4096)  # a few dozen keys in practice; bounded for stores with many others
def param_type(key: str) -> TypeAdapter[Any] | None:
    """The declared type of a dotted key (``model.depth``, ``train.pretrain.epochs``), without its
    constraints, or None for a key the schema does not know."""
    if key in EXTRA_PARAMS:
        return TypeAdapter(EXTRA_PARAMS[key])
    model: type[BaseModel] | None = Spec
    parts = key.split(".")
    for i, part in enumerate(parts):
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        if i == len(parts) - 1:
            return TypeAdapter(_bare(annotation))
        model = _section(annotation)
    return None


def _readings(text: str) -> Iterator[Any]:
    """What ``text`` may have been written from, the likeliest first; the text itself last."""
    s = text.strip()
    if s in NULL_TEXTS:
        yield None
    try:
        yield ast.literal_eval(s)  # str() of numbers, booleans, lists and dicts
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        yield json.loads(s)  # true, false, null and JSON mappings (a sweep's grid and tune)
    except ValueError:
        pass
    try:
        yield float(s)  # nan, inf
    except ValueError:
        pass
    yield text


def _frozen(value: Any) -> Any:
    """Lists as tuples (hashable, as reports group and compare them), models as plain mappings."""
    if isinstance(value, BaseModel):
        return {name: _frozen(v) for name, v in value}
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


@functools.lru_cache(maxsize=65536)  # thousands of runs share a few values per param
def param_value(key: str, text: str | None) -> Any:
    """A logged param's text as the value of the type the spec declares for ``key``.

    ``param_value("model.depth", "8")`` is 8, ``("train.learning_rate", "1e-3")`` 0.001,
    ``("data.augment", "['flip']")`` ``('flip',)``, ``("data.target", "8")`` the string ``"8"``. Lists
    come back as tuples and models (a sweep's tune ranges) as mappings. ``"None"`` and ``"null"`` are
    None where the field may be None. Only the type counts: ranges and registry names are not checked,
    so a value an older spec version allowed still reads back typed.

    Falls back to the text unchanged for a key the schema does not know (a param something else logged,
    or one of a spec version that had the key) and for a text that does not read as the declared type
    (a sweep parent's ``sweep.seed_keys``, logged comma-joined). The value is cached and shared: treat it
    as read-only.
    """
    if text is None:
        return None
    adapter = param_type(key)
    if adapter is None:
        return text
    for reading in _readings(text):
        try:
            return _frozen(adapter.validate_python(reading, strict=True))
        except ValidationError:
            continue
    return text

