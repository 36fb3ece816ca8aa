"""What a dataset loader returns, and what a model builder needs to know of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Task = Literal["classification", "regression"]
Kind = Literal["tabular", "image", "sequence"]
AugmentSpace = Literal["raw", "standardized"]


@dataclass(frozen=True)
class Augmentation:
    """How strong each augmentation that ``data.augment`` may list is, and the space it acts in.

    ``space`` "raw": the model maps its standardized input back to pixel values in [0, 1],
    augments there (a shifted, rotated or zoomed-out image is filled with 0, the background of
    digits and MNIST) and standardizes again; ``noise_std`` is in pixel units. "standardized":
    augmentation acts on the standardized input, filling with 0 (the mean value) and with
    ``noise_std`` in standardized units - what runs did before ``data.augment_space`` existed.
    Only the augmentations listed in ``data.augment`` are applied; the other strengths are unused.
    """

    space: AugmentSpace = "raw"
    shift: float = 0.125  # largest translation, as a fraction of height and of width
    rotation: float = 10.0  # largest rotation, degrees either way
    zoom: float = 0.1  # largest zoom in or out, as a fraction
    noise_std: float = 0.1  # standard deviation of additive Gaussian noise


@dataclass(frozen=True)
class DataInfo:
    """The facts about a dataset that a model builder and a loss need."""

    input_shape: tuple[int, ...]
    task: Task
    kind: Kind
    n_classes: int | None = None  # classification only
    n_outputs: int = 1  # regression targets
    # Images: the per-channel mean and standard deviation (in pixel units) the inputs were
    # standardized with; empty when they were not. The model undoes them to augment raw pixels.
    input_mean: tuple[float, ...] = ()
    input_std: tuple[float, ...] = ()
    augmentation: Augmentation = Augmentation()


@dataclass
class Dataset:
    """Standardized, split arrays. Labels are int class ids or float targets."""

    name: str
    info: DataInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # Extra evaluation sets, e.g. "ood" for inputs outside the training range.
    extra: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
