"""What a dataset loader returns, and what a model builder needs to know of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Task = Literal["classification", "regression"]
Kind = Literal["tabular", "image", "sequence"]


@dataclass(frozen=True)
class DataInfo:
    """The facts about a dataset that a model builder and a loss need."""

    input_shape: tuple[int, ...]
    task: Task
    kind: Kind
    n_classes: int | None = None  # classification only
    n_outputs: int = 1  # regression targets


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
