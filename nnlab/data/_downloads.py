"""Image datasets downloaded once by ``keras.datasets`` (imported only when loaded).

These come with an official test set: it is the test split, ``test_fraction`` is
ignored, and validation is ``val_fraction`` of the official training part. Pixels are
scaled to [0, 1] by 255.

Files are cached where Keras keeps them: ``$KERAS_HOME/datasets`` when ``KERAS_HOME``
is set before Keras is first imported, else ``~/.keras/datasets``. (Keras 3's
``load_data()`` takes no cache directory, so nnlab cannot choose another one.)
Offline, a missing file stops the command with a ``FatalError`` naming the file to copy.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import NamedTuple

import numpy as np

from nnlab.data._common import Raw, register
from nnlab.errors import FatalError


class _Source(NamedTuple):
    shape: tuple[int, ...]
    files: str  # what to copy by hand when offline
    subdir: str  # under the Keras cache directory


SOURCES = {
    "mnist": _Source((28, 28, 1), "mnist.npz", "datasets"),
    "fashion_mnist": _Source(
        (28, 28, 1),
        "train-labels-idx1-ubyte.gz, train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz "
        "and t10k-images-idx3-ubyte.gz",
        os.path.join("datasets", "fashion-mnist"),
    ),
    "cifar10": _Source((32, 32, 3), "cifar-10-python.tar.gz (renamed cifar-10-batches-py-target_archive)",
                       "datasets"),
}


def cache_dir(subdir: str = "datasets") -> str:
    """Where Keras caches downloads (its own rule: ``$KERAS_HOME`` or ``~/.keras``)."""
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.join(home, subdir)


def _keras_load_data(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    module = importlib.import_module(f"keras.datasets.{name}")
    return module.load_data()  # type: ignore[no-any-return]


@functools.cache
def fetch(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The raw uint8 arrays ``x_train, y_train, x_test, y_test``, loaded once per process."""
    source = SOURCES[name]
    try:
        (x_train, y_train), (x_test, y_test) = _keras_load_data(name)
    except Exception as exc:  # no network, a proxy, a corrupt file: all end the same way
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise FatalError(
            f"dataset '{name}' could not be downloaded ({reason}); connect to the internet once, "
            f"or copy {source.files} into {cache_dir(source.subdir)}") from exc
    arrays = (x_train, np.asarray(y_train).reshape(-1), x_test, np.asarray(y_test).reshape(-1))
    for a in arrays:
        a.flags.writeable = False
    return arrays


def _images(name: str) -> Raw:
    x_train, y_train, x_test, y_test = fetch(name)
    shape = SOURCES[name].shape

    def scale(x: np.ndarray) -> np.ndarray:
        if x.ndim == 4 and x.shape[1] == 3 and shape[-1] == 3:  # Keras set to channels_first
            x = x.transpose(0, 2, 3, 1)
        return (x.reshape((-1, *shape)) / np.float32(255.0)).astype(np.float32, copy=False)

    return Raw(x=scale(x_train), y=y_train.astype(np.int64), n_classes=10,
               test=(scale(x_test), y_test.astype(np.int64)))


@register("mnist", task="classification", kind="image")
def mnist(rng: np.random.Generator) -> Raw:
    """70000 handwritten digits, (28, 28, 1); 60000 train + 10000 official test."""
    return _images("mnist")


@register("fashion_mnist", task="classification", kind="image")
def fashion_mnist(rng: np.random.Generator) -> Raw:
    """70000 clothing images, (28, 28, 1); 60000 train + 10000 official test."""
    return _images("fashion_mnist")


@register("cifar10", task="classification", kind="image")
def cifar10(rng: np.random.Generator) -> Raw:
    """60000 colour images, (32, 32, 3); 50000 train + 10000 official test."""
    return _images("cifar10")
