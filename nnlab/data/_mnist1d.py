"""MNIST-1D, generated here by the ``mnist1d`` package (Greydanus & Kobak, ICML 2024).

Ten template signals of 12 points, each example padded, dilated, scaled, translated (with
wrap-around), given correlated and independent noise, sheared and resampled to ``seq_len``
points; the generator then centres the whole set and scales it to standard deviation 1. It is
small enough for a CPU, yet dense nets, convolutions and recurrent nets differ clearly on it.

Only ``mnist1d.data.make_dataset`` is called: it builds the set locally (``get_dataset``
would download the published one). It seeds and draws from NumPy's and Python's global
generators, so their states are saved before and put back after, under a lock: the rest of a
run draws what it would have drawn without MNIST-1D.
"""

from __future__ import annotations

import functools
import random
import threading

import numpy as np

from nnlab.data._common import Raw, register, require

N_CLASSES = 10
MIN_SAMPLES = 10 * N_CLASSES
MIN_LENGTH = 4

_global_rng_lock = threading.Lock()


@register("mnist1d", task="classification", kind="sequence", options=("n_samples", "noise", "seq_len"))
def mnist1d(rng: np.random.Generator, n_samples: int = 5000, noise: float = 0.25, seq_len: int = 40) -> Raw:
    """MNIST-1D: ``n_samples`` signals of shape (``seq_len``, 1), n_samples / 10 of each digit.

    ``noise`` is the scale of the correlated (Gaussian-smoothed) background noise
    (``corr_noise_scale``, 0.25 in the paper); the other settings are the paper's: independent
    noise 0.02, shear 0.75, scale 0.4, translation up to 48 of the 72 points before resampling.
    The generator's seed is drawn from ``data.seed``.
    """
    require(n_samples >= MIN_SAMPLES and n_samples % N_CLASSES == 0, "data.n_samples",
            f"must be a multiple of {N_CLASSES} and >= {MIN_SAMPLES}", n_samples)
    require(noise >= 0, "data.noise", "must be >= 0", noise)
    require(seq_len >= MIN_LENGTH, "data.seq_len", f"must be an integer >= {MIN_LENGTH}", seq_len)
    seed = int(rng.integers(0, 2**32))
    x, y = _generate(seed, int(n_samples), float(noise), int(seq_len))
    return Raw(x=x, y=y, n_classes=N_CLASSES)


@functools.lru_cache(maxsize=4)
def _generate(seed: int, n_samples: int, noise: float, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole generated set (training and test parts of the package joined), read-only."""
    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    args = get_dataset_args(as_dict=True)
    args.update(num_samples=n_samples, corr_noise_scale=noise, final_seq_length=seq_len, seed=seed)
    with _global_rng_lock:
        numpy_state, python_state = np.random.get_state(), random.getstate()
        try:
            data = make_dataset(ObjectView(args))
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)[:, :, None]
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y
