"""Shared helpers of the nnlab.models tests: a stand-in model config, tiny data."""

from __future__ import annotations

import dataclasses

import numpy as np

from nnlab.data._base import DataInfo


@dataclasses.dataclass(frozen=True)
class ModelCfg:
    """Same attributes (and defaults, but tiny) as the spec's ``model`` section."""

    family: str = "mlp"
    depth: int = 2
    width: int = 8
    activation: str = "relu"
    normalization: str = "none"
    residual: bool = False
    dropout: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    initializer: str = "auto"
    cell: str = "lstm"
    heads: int = 2
    kernel_size: int = 3
    pool: str = "max"
    downsample: str = "cover"
    ffn_multiplier: int = 2


def cfg(**changes: object) -> ModelCfg:
    return dataclasses.replace(ModelCfg(), **changes)


TABULAR = DataInfo(input_shape=(5,), task="classification", kind="tabular", n_classes=3)
TABULAR_REG = DataInfo(input_shape=(5,), task="regression", kind="tabular", n_outputs=2)
IMAGE = DataInfo(input_shape=(8, 8, 1), task="classification", kind="image", n_classes=3)
IMAGE_RGB_REG = DataInfo(input_shape=(6, 6, 3), task="regression", kind="image", n_outputs=1)
SEQUENCE = DataInfo(input_shape=(6, 3), task="classification", kind="sequence", n_classes=4)
SEQUENCE_REG = DataInfo(input_shape=(6, 3), task="regression", kind="sequence", n_outputs=2)

INFOS = {
    "tabular": TABULAR,
    "tabular_reg": TABULAR_REG,
    "image": IMAGE,
    "image_rgb_reg": IMAGE_RGB_REG,
    "sequence": SEQUENCE,
    "sequence_reg": SEQUENCE_REG,
}


def n_outputs(info: DataInfo) -> int:
    return int(info.n_classes) if info.task == "classification" else int(info.n_outputs)


def make_data(info: DataInfo, n: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *info.input_shape)).astype("float32")
    if info.task == "classification":
        y = rng.integers(0, info.n_classes, size=n)
    else:
        y = rng.normal(size=(n, info.n_outputs)).astype("float32")
    return x, y


def compile_for(model, info: DataInfo, *, run_eagerly: bool = False) -> None:
    import keras

    if info.task == "classification":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        loss = keras.losses.MeanSquaredError()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, run_eagerly=run_eagerly)


def weights_of(model) -> dict[str, list[np.ndarray]]:
    return {layer.name: [w.numpy().copy() for w in layer.weights] for layer in model.layers if layer.weights}
