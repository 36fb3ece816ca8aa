"""Small datasets bundled with scikit-learn (no download needed).

``digits`` is the 8x8 images (scaled to [0, 1] by their maximum 16), ``digits_flat`` the
same 64 pixels as tabular features, ``digits_shifted`` each digit at a random place on a
larger blank canvas. ``wine``, ``breast_cancer`` and ``iris`` are tabular.
"""

from __future__ import annotations

import functools

import numpy as np

from nnlab.data._common import Raw, register, require

# The CSV files scikit-learn ships for these (file, header lines): every row is the features and then
# the class. Read directly they cost milliseconds; ``sklearn.datasets`` costs ~1 s to import, on the
# critical path of every run and sweep worker that trains on them.
_FILES = {
    "digits": ("digits.csv.gz", 0),
    "wine": ("wine_data.csv", 1),
    "breast_cancer": ("breast_cancer.csv", 1),
    "iris": ("iris.csv", 1),
}


@functools.cache
def _sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    table = _read_shipped(name)
    if table is not None:
        x, y = table[:, :-1], table[:, -1]
    else:  # the files moved in some release of scikit-learn: ask it
        from sklearn import datasets

        x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    x.flags.writeable = y.flags.writeable = False  # shared by every load
    return x, y


def _read_shipped(name: str) -> np.ndarray | None:
    """scikit-learn's own CSV of the dataset, found without importing scikit-learn; None if absent."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    file, header = _FILES[name]
    path = Path(spec.origin).parent / "datasets" / "data" / file
    if not path.is_file():
        return None
    table = np.loadtxt(path, delimiter=",", skiprows=header, dtype=np.float64)
    return table if table.ndim == 2 and table.shape[1] > 1 else None


def _tabular(name: str) -> Raw:
    x, y = _sklearn(name)
    return Raw(x=x, y=y, n_classes=int(y.max()) + 1)


@register("digits", task="classification", kind="image")
def digits(rng: np.random.Generator) -> Raw:
    """1797 handwritten digits as (8, 8, 1) images in [0, 1]; 10 classes."""
    x, y = _sklearn("digits")
    return Raw(x=(x / 16.0).reshape(-1, 8, 8, 1).astype(np.float32), y=y, n_classes=10)


DIGIT_SIZE = 8
MAX_CANVAS = 128


@register("digits_shifted", task="classification", kind="image", options=("canvas",))
def digits_shifted(rng: np.random.Generator, canvas: int = 16) -> Raw:
    """The 1797 digits, each at a uniformly random position of a ``canvas`` x ``canvas`` image of
    zeros, as (canvas, canvas, 1) images in [0, 1]; 10 classes. Positions come from ``data.seed``.

    Where a digit lies says nothing of its class, so a model has to recognise it anywhere: a
    task for translation equivariance (convolutions, shift augmentation) that 8x8 digits are not.
    """
    require(DIGIT_SIZE <= canvas <= MAX_CANVAS, "data.canvas",
            f"must be an integer in [{DIGIT_SIZE}, {MAX_CANVAS}] (the digits are {DIGIT_SIZE}x{DIGIT_SIZE})", canvas)
    x, y = _sklearn("digits")
    digits = (x / 16.0).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)
    n = len(digits)
    rows, cols = rng.integers(0, canvas - DIGIT_SIZE + 1, size=(2, n))
    images = np.zeros((n, canvas, canvas), dtype=np.float32)
    window = np.arange(DIGIT_SIZE)
    images[np.arange(n)[:, None, None], (rows[:, None] + window)[:, :, None],
           (cols[:, None] + window)[:, None, :]] = digits
    return Raw(x=images[..., None], y=y, n_classes=10)


@register("digits_flat", task="classification", kind="tabular")
def digits_flat(rng: np.random.Generator) -> Raw:
    """The digits as 64 tabular features; 10 classes."""
    return _tabular("digits")


@register("wine", task="classification", kind="tabular")
def wine(rng: np.random.Generator) -> Raw:
    """178 wines, 13 chemical features; 3 classes."""
    return _tabular("wine")


@register("breast_cancer", task="classification", kind="tabular")
def breast_cancer(rng: np.random.Generator) -> Raw:
    """569 tumours, 30 features; 2 classes."""
    return _tabular("breast_cancer")


@register("iris", task="classification", kind="tabular")
def iris(rng: np.random.Generator) -> Raw:
    """150 flowers, 4 features; 3 classes."""
    return _tabular("iris")
