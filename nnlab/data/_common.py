"""The dataset registry and what its loaders share.

A loader is registered with ``@register(name, task=..., kind=..., options=...)``. It is
called as ``loader(rng, **options)`` with only the generator options the spec gave
(the rest fall back to the loader's keyword defaults) and returns a :class:`Raw`: the
whole pool of examples before splitting. Splitting, subsetting, label noise and
standardization are the same for every dataset and live in ``_split.py``/``_load.py``.

Nothing here imports TensorFlow, Keras, scikit-learn or pandas: loaders import them
inside their bodies, so ``import nnlab.data`` and reading metadata stay cheap.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnlab.data._base import Kind, Task
from nnlab.errors import SpecError
from nnlab.registry import Registry

#: Names of the dataset generator options a spec may set (each ``None`` when not given).
GENERATOR_OPTIONS: tuple[str, ...] = (
    "n_samples",
    "noise",
    "n_features",
    "n_classes",
    "seq_len",
    "canvas",
    "function",
    "x_range",
    "ood_range",
    "path",
    "target",
)


@dataclass(frozen=True)
class Raw:
    """A loader's output: every example of the dataset, unsplit and unstandardized.

    ``x`` is float32 with the final input shape (images already scaled to [0, 1] by
    their known maximum); ``y`` is int64 class ids in
    ``0..n_classes-1`` (classification) or float32 of shape ``(n, k)`` (regression).
    ``test`` is a predefined test set (downloads); when given, ``x``/``y`` are only the
    pool that train and validation are drawn from. ``extra`` holds further evaluation
    sets (e.g. ``"ood"``), standardized later with the training statistics.
    ``task`` is set only by loaders that decide it from their data (``csv``).
    """

    x: np.ndarray
    y: np.ndarray
    n_classes: int | None = None
    test: tuple[np.ndarray, np.ndarray] | None = None
    extra: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    task: Task | None = None


Loader = Callable[..., Raw]

#: Every dataset by name. Metadata: ``task`` ("classification", "regression", or
#: ``None`` when the data decides it, as for ``csv``), ``kind`` ("tabular", "image",
#: "sequence") and ``options`` (frozenset of the generator options it accepts).
DATASETS: Registry[Loader] = Registry("dataset")


def register(name: str, *, task: Task | None, kind: Kind,
             options: Iterable[str] = ()) -> Callable[[Loader], Loader]:
    """Register a loader under ``name`` with its metadata."""
    opts = frozenset(options)
    unknown = opts - set(GENERATOR_OPTIONS)
    if unknown:  # a programming error in this package, not bad input
        raise ValueError(f"dataset '{name}' declares unknown options {sorted(unknown)}")
    return DATASETS.register(name, task=task, kind=kind, options=opts)


def make_rng(seed: int, purpose: str) -> np.random.Generator:
    """An independent generator for one purpose ("split", "noise", ...) of one seed.

    Separate streams keep, e.g., the split unchanged when only the label noise changes.
    """
    return np.random.default_rng([zlib.crc32(purpose.encode()), int(seed) % 2**64])


def require(ok: bool, key: str, rule: str, value: Any) -> None:
    """Raise ``SpecError`` "``key``: ``rule``, but got ``value``" unless ``ok``."""
    if not ok:
        shown = repr(value) if isinstance(value, str) else str(value)
        raise SpecError(f"{rule}, but got {shown}", key=key)
