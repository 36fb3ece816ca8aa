"""The model-family registry and the one entry point that builds a Keras model.

``build_model`` does what every family shares: the ``input`` layer, augmentation
(images only, identity at inference; with strengths and space from ``DataInfo.augmentation``,
in raw pixels by default, see ``augmentation_layers``), the family's hidden blocks, and the
``head`` (logits for classification — no softmax, losses use ``from_logits=True`` — or linear
units for regression).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nnlab.data._base import DataInfo
from nnlab.errors import SpecError
from nnlab.models._blocks import BuildContext, as_image, augmentation_layers
from nnlab.registry import Registry

# A family builder maps (context, input tensor) to the features the head reads.
FamilyBuilder = Callable[[BuildContext, Any], Any]

FAMILIES: Registry[FamilyBuilder] = Registry("model family")


def _check(cfg: Any, info: DataInfo, augment: Sequence[str]) -> None:
    kinds = FAMILIES.meta(cfg.family)["kinds"]
    if info.kind not in kinds:
        raise SpecError(
            f"family '{cfg.family}' accepts data of kind {', '.join(kinds)}, but the data is {info.kind!r}",
            key="model.family",
        )
    if augment and info.kind != "image":
        raise SpecError(
            f"augmentation applies to image data only, but got {list(augment)} for {info.kind!r} data",
            key="data.augment",
        )
    if len(set(augment)) != len(augment):
        raise SpecError(f"must list each augmentation once, but got {list(augment)}", key="data.augment")
    if info.task == "classification" and not (info.n_classes and info.n_classes >= 2):
        raise SpecError(f"classification needs n_classes >= 2, but got {info.n_classes}", key="data")


def output_units(info: DataInfo) -> int:
    if info.task == "classification":
        return int(info.n_classes or 0)
    return int(info.n_outputs)


def build_model(cfg: Any, info: DataInfo, *, augment: Sequence[str] = (), seed: int = 0,
                precision: str = "float32") -> Any:
    """Build the uncompiled ``keras.Model`` that ``cfg`` (a validated ``model`` section) describes.

    Weights depend only on ``seed``: each initializer has its own seed derived from it and
    from its layer's name, whatever Keras' global seed is. ``precision`` is a Keras dtype policy
    (``train.precision``): under a mixed one the hidden layers compute in float16 or bfloat16 and
    keep float32 weights, and the head stays float32, so logits and losses keep their range.
    """
    augment = list(augment)
    _check(cfg, info, augment)
    ctx = BuildContext(cfg, info, seed)
    keras = ctx.keras

    with _dtype_policy(keras, precision):
        inputs = keras.Input(shape=tuple(info.input_shape), name="input")
        x = inputs
        if info.kind == "image":
            x = as_image(ctx, x)
            for layer in augmentation_layers(ctx, augment):
                x = layer(x)
        features = FAMILIES.get(cfg.family)(ctx, x)
    outputs = ctx.dense(output_units(info), "head")(features)  # float32, the policy restored
    return keras.Model(inputs, outputs, name=f"nnlab_{cfg.family}")


@contextmanager
def _dtype_policy(keras: Any, name: str) -> Iterator[None]:
    """Keras's global dtype policy set to ``name`` while layers are made (each keeps the one it was
    made under), then put back: a sweep worker builds many models in one process."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def count_params(cfg: Any, info: DataInfo, *, trainable_only: bool = False) -> int:
    """Build the model and count its parameters (all weights, like ``Model.count_params``;
    ``trainable_only`` leaves out e.g. batch-norm moving statistics)."""
    model = build_model(cfg, info)
    if trainable_only:
        return int(sum(int(w.numpy().size) for w in model.trainable_weights))
    return int(model.count_params())


def custom_objects() -> dict[str, type]:
    """Register nnlab's custom layers with Keras and return them by registered name.

    ``build_model`` registers them itself; call this (or use :func:`load_model`) before
    ``keras.models.load_model`` in a process that has not built a model.
    """
    from nnlab.models._transformer import positional_embedding_class

    classes = [positional_embedding_class()]
    return {f"nnlab>{cls.__name__}": cls for cls in classes}


def load_model(path: str | Path) -> Any:
    """``keras.models.load_model`` with nnlab's custom layers registered."""
    import keras

    return keras.models.load_model(str(path), custom_objects=custom_objects())
