"""Synthetic datasets drawn with numpy from the spec's seed.

Every draw comes from the generator the loader is given, so a seed fixes the data; a
different seed draws a fresh sample of the same distribution. ``noise`` is a standard
deviation in input units (targets for ``function``; logits for ``teacher``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from nnlab.data._common import Raw, make_rng, register, require

MIN_SAMPLES = 10


def _check_common(n_samples: int, noise: float) -> None:
    require(n_samples >= MIN_SAMPLES, "data.n_samples", f"must be an integer >= {MIN_SAMPLES}", n_samples)
    require(noise >= 0, "data.noise", "must be >= 0", noise)


def _classes(n_samples: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced labels in random order."""
    return rng.permutation(np.arange(n_samples) % n_classes)


def _raw(x: np.ndarray, y: np.ndarray, n_classes: int) -> Raw:
    return Raw(x=x.astype(np.float32), y=y.astype(np.int64), n_classes=n_classes)


@register("moons", task="classification", kind="tabular", options=("n_samples", "noise"))
def moons(rng: np.random.Generator, n_samples: int = 1000, noise: float = 0.2) -> Raw:
    """Two interleaving half circles in 2-D; 2 classes."""
    _check_common(n_samples, noise)
    y = _classes(n_samples, 2, rng)
    angle = rng.uniform(0, np.pi, n_samples)
    upper = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], axis=1)
    x = np.where(y[:, None] == 0, upper, lower) + rng.normal(0, noise, (n_samples, 2))
    return _raw(x, y, 2)


@register("circles", task="classification", kind="tabular", options=("n_samples", "noise"))
def circles(rng: np.random.Generator, n_samples: int = 1000, noise: float = 0.1) -> Raw:
    """A circle of radius 0.5 (class 1) inside one of radius 1 (class 0) in 2-D."""
    _check_common(n_samples, noise)
    y = _classes(n_samples, 2, rng)
    angle = rng.uniform(0, 2 * np.pi, n_samples)
    radius = np.where(y == 0, 1.0, 0.5)
    x = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return _raw(x + rng.normal(0, noise, (n_samples, 2)), y, 2)


@register("spirals", task="classification", kind="tabular",
          options=("n_samples", "noise", "n_classes"))
def spirals(rng: np.random.Generator, n_samples: int = 1000, noise: float = 0.05,
            n_classes: int = 2) -> Raw:
    """``n_classes`` interleaved spiral arms of 1.5 turns within the unit disc."""
    _check_common(n_samples, noise)
    require(n_classes >= 2, "data.n_classes", "must be an integer >= 2", n_classes)
    y = _classes(n_samples, n_classes, rng)
    t = rng.uniform(0.05, 1.0, n_samples)  # position along the arm = radius
    angle = 3 * np.pi * t + 2 * np.pi * y / n_classes
    x = t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return _raw(x + rng.normal(0, noise, (n_samples, 2)), y, n_classes)


@register("xor", task="classification", kind="tabular", options=("n_samples", "noise", "n_features"))
def xor(rng: np.random.Generator, n_samples: int = 1000, noise: float = 0.05,
        n_features: int = 2) -> Raw:
    """Uniform inputs in [-1, 1]^d; the label is the parity of the negative coordinates.

    ``noise`` jitters the inputs after labelling, blurring the boundaries.
    """
    _check_common(n_samples, noise)
    require(n_features >= 1, "data.n_features", "must be an integer >= 1", n_features)
    x = rng.uniform(-1, 1, (n_samples, n_features))
    y = (x < 0).sum(axis=1) % 2
    return _raw(x + rng.normal(0, noise, x.shape), y, 2)


TEACHER_HIDDEN = 32


@functools.lru_cache(maxsize=32)
def _teacher(n_features: int, n_classes: int) -> tuple[np.ndarray, ...]:
    """A fixed random tanh network (same for every seed) with balanced classes.

    The output biases are tuned on a reference sample so each class gets about
    ``1 / n_classes`` of Gaussian inputs.
    """
    rng = make_rng(0, f"teacher/{n_features}/{n_classes}")
    w1 = rng.normal(0, 1 / np.sqrt(n_features), (n_features, TEACHER_HIDDEN))
    b1 = rng.normal(0, 0.5, TEACHER_HIDDEN)
    w2 = rng.normal(0, 1 / np.sqrt(TEACHER_HIDDEN), (TEACHER_HIDDEN, n_classes))
    reference = np.tanh(rng.standard_normal((20000, n_features)) @ w1 + b1) @ w2
    b2 = -reference.mean(axis=0)
    for _ in range(300):
        share = np.bincount((reference + b2).argmax(axis=1), minlength=n_classes) / len(reference)
        b2 -= 0.2 * reference.std() * (share - 1 / n_classes)
    return w1, b1, w2, b2


@register("teacher", task="classification", kind="tabular",
          options=("n_samples", "noise", "n_features", "n_classes"))
def teacher(rng: np.random.Generator, n_samples: int = 1000, noise: float = 0.0,
            n_features: int = 10, n_classes: int = 3) -> Raw:
    """Standard Gaussian inputs labelled by the argmax of a fixed random 2-layer tanh net.

    ``noise`` is added to the teacher's logits (which have a scale of about 1).
    """
    _check_common(n_samples, noise)
    require(n_features >= 1, "data.n_features", "must be an integer >= 1", n_features)
    require(n_classes >= 2, "data.n_classes", "must be an integer >= 2", n_classes)
    w1, b1, w2, b2 = _teacher(n_features, n_classes)
    x = rng.standard_normal((n_samples, n_features))
    logits = np.tanh(x @ w1 + b1) @ w2 + b2 + rng.normal(0, noise, (n_samples, n_classes))
    return _raw(x, logits.argmax(axis=1), n_classes)


FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sin": lambda x: np.sin(3 * np.pi * x),
    "cubic": lambda x: x**3,
    "abs": np.abs,
    "step": lambda x: (x > 0).astype(np.float64),
    "sawtooth": lambda x: 2 * np.mod(1.5 * x + 0.5, 1.0) - 1,
    "gaussian_bump": lambda x: np.exp(-8 * x**2),
}


def _outside(rng: np.random.Generator, n: int, inner: tuple[float, float],
             outer: tuple[float, float]) -> np.ndarray:
    """``n`` points uniform on ``outer`` minus ``inner`` (strictly outside ``inner``)."""
    lo, hi = inner
    left = (outer[0], min(outer[1], lo))  # [outer_lo, lo)
    right = (max(outer[0], hi), outer[1])  # (hi, outer_hi]
    len_left, len_right = max(0.0, left[1] - left[0]), max(0.0, right[1] - right[0])
    u = rng.random(n)
    on_left = rng.random(n) < len_left / (len_left + len_right)
    return np.where(on_left, left[0] + u * len_left, right[1] - u * len_right)


@register("function", task="regression", kind="tabular",
          options=("n_samples", "noise", "function", "x_range", "ood_range"))
def function(rng: np.random.Generator, n_samples: int = 1000, noise: float = 0.1,
             function: str = "sin", x_range: tuple[float, float] = (-1.0, 1.0),
             ood_range: tuple[float, float] | None = None) -> Raw:
    """1-D regression: x uniform on ``x_range``, y = f(x) + N(0, noise^2).

    f is sin(3 pi x), x^3, |x|, step (1 for x > 0 else 0), sawtooth (period 2/3, in
    [-1, 1)) or gaussian_bump exp(-8 x^2). With ``ood_range``, ``extra["ood"]`` holds
    ``n_samples // 5`` points drawn uniformly from ``ood_range`` outside ``x_range``
    (with the same target noise).
    """
    _check_common(n_samples, noise)
    require(function in FUNCTIONS, "data.function", f"must be one of {', '.join(FUNCTIONS)}", function)
    lo, hi = (float(v) for v in x_range)
    require(lo < hi, "data.x_range", "must be [low, high] with low < high", list(x_range))
    f = FUNCTIONS[function]

    def targets(x: np.ndarray) -> np.ndarray:
        return (f(x) + rng.normal(0, noise, x.shape)).astype(np.float32).reshape(-1, 1)

    x = rng.uniform(lo, hi, n_samples)
    y = targets(x)
    extra = {}
    if ood_range is not None:
        o_lo, o_hi = (float(v) for v in ood_range)
        require(o_lo < o_hi and (o_lo < lo or o_hi > hi), "data.ood_range",
                f"must be [low, high] with low < high reaching outside x_range {[lo, hi]}",
                list(ood_range))
        x_ood = _outside(rng, max(1, n_samples // 5), (lo, hi), (o_lo, o_hi))
        extra["ood"] = (x_ood.astype(np.float32).reshape(-1, 1), targets(x_ood))
    return Raw(x=x.astype(np.float32).reshape(-1, 1), y=y, extra=extra)
