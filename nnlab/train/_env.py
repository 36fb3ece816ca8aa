"""Importing Keras on TensorFlow quietly, with the thread count set before TensorFlow starts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any


def configure_environment(threads: int | None = None) -> None:
    """Environment TensorFlow reads at import: quiet logs, Keras backend, thread pools."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # bitwise reproducible CPU results
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    threads = threads or _env_threads()
    if threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(2, threads)))
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def _env_threads() -> int | None:
    value = os.environ.get("NNLAB_THREADS")
    return int(value) if value and value.isdigit() and int(value) > 0 else None


@contextmanager
def _silenced_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (Python exceptions still propagate)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@lru_cache(maxsize=1)
def keras() -> Any:
    """Import and return keras (first call ~4 s: it imports TensorFlow)."""
    configure_environment()
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    with _silenced_stderr():  # TensorFlow's C++ start-up notes bypass its own log level
        import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    threads = _env_threads()
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:
            pass  # already initialized; the environment variables applied
    import keras as _keras

    return _keras


def device_description() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"gpu:{len(gpus)}"
    return f"cpu:{os.cpu_count()}"
