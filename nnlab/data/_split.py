"""Splitting, training subsets, label noise and standardization, shared by all datasets.

Guarantees, for one seed:

* Validation and test sets depend only on the labels, the fractions and the seed, never on
  ``train_size`` or ``label_noise``.
* The training pool is kept in a fixed order and a training set is a prefix of it, so a
  smaller ``train_size`` gives a subset of a larger one.
* For classification the order interleaves the classes, so the test set, the validation
  set and every training prefix keep the class proportions (to within one example).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nnlab.data._base import Kind
from nnlab.data._common import make_rng, require
from nnlab.errors import SpecError


class Split(NamedTuple):
    """Indices into the examples: ``pool`` in its fixed order, then validation and test."""

    pool: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _order(y: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random order of ``range(n)``; with labels, classes are spread evenly along it.

    Each example of a class with ``m`` members gets the key ``(rank + u) / m`` for a random
    rank and ``u`` in [0, 1): every class covers [0, 1) evenly, so any contiguous stretch
    of the sorted order holds each class in proportion.
    """
    if y is None:
        return rng.permutation(n)
    keys = np.empty(n)
    jitter = rng.random(n)
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        ranks = rng.permutation(len(members))
        keys[members] = (ranks + jitter[members]) / len(members)
    return np.argsort(keys, kind="stable")


def split_indices(y: np.ndarray, *, val_fraction: float, test_fraction: float, seed: int,
                  stratify: bool) -> Split:
    """Split ``len(y)`` examples into a training pool, validation and test indices.

    ``test_fraction`` of 0 gives an empty test set (used when a dataset has its own).
    """
    n = len(y)
    require(0 <= val_fraction < 1, "data.val_fraction", "must be in [0, 1)", val_fraction)
    require(0 <= test_fraction < 1, "data.test_fraction", "must be in [0, 1)", test_fraction)
    require(val_fraction + test_fraction < 1, "data.val_fraction",
            f"plus test_fraction ({test_fraction}) must be < 1 to leave a training pool",
            val_fraction)
    n_test = int(round(test_fraction * n))
    n_val = int(round(val_fraction * n))
    n_pool = n - n_test - n_val
    too_small = (n_pool < 2 or (val_fraction > 0 and n_val < 1)
                 or (test_fraction > 0 and n_test < 1))
    if too_small:
        raise SpecError(
            f"the dataset has {n} examples, too few to split with val_fraction={val_fraction} "
            f"and test_fraction={test_fraction} (each split needs at least one example and "
            f"the training pool two); use more examples or larger fractions", key="data")
    order = _order(y if stratify else None, n, make_rng(seed, "split"))
    return Split(pool=order[n_test + n_val:], val=order[n_test:n_test + n_val],
                 test=order[:n_test])


def train_indices(pool: np.ndarray, train_size: int | float | None) -> np.ndarray:
    """The training subset: a prefix of the pool (int = count, float = fraction)."""
    n = len(pool)
    if train_size is None:
        return pool
    if isinstance(train_size, bool) or not isinstance(train_size, (int, float, np.integer, np.floating)):
        raise SpecError(f"must be an integer count, a fraction in (0, 1] or null, but got {train_size!r}",
                        key="data.train_size")
    if isinstance(train_size, (int, np.integer)):
        require(train_size >= 1, "data.train_size", "must be an integer >= 1", train_size)
        require(train_size <= n, "data.train_size", f"must be <= {n} (the training pool)", train_size)
        return pool[: int(train_size)]
    require(0 < train_size <= 1, "data.train_size", "as a fraction must be in (0, 1]", train_size)
    return pool[: max(1, int(round(train_size * n)))]


def add_label_noise(y: np.ndarray, *, rate: float, n_classes: int | None, seed: int,
                    pool_size: int) -> np.ndarray:
    """Return training labels with noise; ``y`` is the first ``len(y)`` of a pool.

    Classification: ``round(rate * n)`` labels are replaced by uniformly random classes
    (which may equal the true one). Regression: Gaussian noise with standard deviation
    ``rate * std(y)`` per output. Random numbers are drawn per pool example, so the
    same example gets the same noise whatever the training size.
    """
    require(0 <= rate <= 1, "data.label_noise", "must be in [0, 1]", rate)
    if rate == 0:
        return y
    rng = make_rng(seed, "label_noise")
    n = len(y)
    if n_classes is not None:
        order = rng.random(pool_size)[:n]
        random_labels = rng.integers(0, n_classes, size=pool_size)[:n]
        flip = np.argsort(order, kind="stable")[: int(round(rate * n))]
        noisy = y.copy()
        noisy[flip] = random_labels[flip]
        return noisy
    z = rng.standard_normal((pool_size,) + y.shape[1:])[:n]
    std = y.astype(np.float64).std(axis=0)
    return (y + rate * std * z).astype(np.float32)


class Standardizer(NamedTuple):
    """Shift and scale fitted on training data; ``None`` means "leave unchanged"."""

    mean: np.ndarray | None
    std: np.ndarray | None

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            return a.astype(np.float32)
        return ((a - self.mean) / self.std).astype(np.float32)


IDENTITY = Standardizer(None, None)


def _fit(a: np.ndarray, axis: tuple[int, ...]) -> Standardizer:
    a64 = a.astype(np.float64)
    mean = a64.mean(axis=axis)
    std = a64.std(axis=axis)
    std = np.where(std > 1e-12, std, 1.0)
    return Standardizer(mean, std)


STANDARDIZE_MODES = ("none", "feature", "global")
# what standardization is fitted on: the training pool of every class, or the training set itself
STANDARDIZE_FITS = ("pool", "train")


def standardize_mode(value: str | bool) -> str:
    """``data.standardize`` as one of ``STANDARDIZE_MODES``: ``true`` means feature, ``false`` none."""
    if value is True:
        return "feature"
    if value is False:
        return "none"
    require(value in STANDARDIZE_MODES, "data.standardize",
            f"must be one of {', '.join(STANDARDIZE_MODES)} (or true/false)", value)
    return value


def fit_inputs(x: np.ndarray, kind: Kind, mode: str = "feature") -> Standardizer:
    """Input standardization fitted on ``x``, by kind of data and ``mode``.

    feature: tabular data per feature (column), images per channel (over all pixels);
    global: one mean and standard deviation over every input value; none: unchanged.
    Sequences are never standardized (their values are symbols or markers with a meaning).
    """
    if mode == "none" or kind == "sequence":
        return IDENTITY
    if mode == "global":
        return _fit(x, tuple(range(x.ndim)))
    if kind == "tabular":
        return _fit(x, (0,))
    return _fit(x, tuple(range(x.ndim - 1)))


def fit_targets(y_train: np.ndarray) -> Standardizer:
    """Regression targets: per-output mean and std of the training targets."""
    return _fit(y_train, (0,))
