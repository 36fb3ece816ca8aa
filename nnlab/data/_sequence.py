"""Sequence tasks for recurrent and attention models; inputs are ``(seq_len, channels)``.

Inputs are not standardized (their values are bits and markers); regression targets are.
"""

from __future__ import annotations

import numpy as np

from nnlab.data._common import Raw, register, require

MIN_SAMPLES = 10


@register("parity", task="classification", kind="sequence", options=("n_samples", "seq_len"))
def parity(rng: np.random.Generator, n_samples: int = 2000, seq_len: int = 12) -> Raw:
    """Distinct random bit strings of shape ``(seq_len, 1)``; the label is their parity.

    Sequences are drawn without repetition, so no string is in two splits; hence
    ``n_samples`` must be at most ``2 ** seq_len``.
    """
    require(seq_len >= 1, "data.seq_len", "must be an integer >= 1", seq_len)
    require(n_samples >= MIN_SAMPLES, "data.n_samples", f"must be an integer >= {MIN_SAMPLES}", n_samples)
    if seq_len <= 62:
        require(n_samples <= 2**seq_len, "data.n_samples",
                f"must be <= 2**seq_len = {2**seq_len} (the number of distinct sequences)", n_samples)
        codes = rng.choice(2**seq_len, size=n_samples, replace=False)
        bits = (codes[:, None] >> np.arange(seq_len)) & 1
    else:  # repeats are astronomically unlikely
        bits = rng.integers(0, 2, (n_samples, seq_len))
    y = bits.sum(axis=1) % 2
    return Raw(x=bits.astype(np.float32)[:, :, None], y=y.astype(np.int64), n_classes=2)


@register("adding", task="regression", kind="sequence", options=("n_samples", "seq_len"))
def adding(rng: np.random.Generator, n_samples: int = 2000, seq_len: int = 20) -> Raw:
    """The adding problem: inputs ``(seq_len, 2)`` of values in [0, 1) and a marker channel.

    The marker is 1 at one position in the first half and one in the second half; the
    target is the sum of the two marked values.
    """
    require(seq_len >= 2, "data.seq_len", "must be an integer >= 2", seq_len)
    require(n_samples >= MIN_SAMPLES, "data.n_samples", f"must be an integer >= {MIN_SAMPLES}", n_samples)
    values = rng.random((n_samples, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, n_samples)
    second = rng.integers(half, seq_len, n_samples)
    markers = np.zeros((n_samples, seq_len))
    rows = np.arange(n_samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    x = np.stack([values, markers], axis=2)
    return Raw(x=x.astype(np.float32), y=y.astype(np.float32).reshape(-1, 1))
