"""Importing Keras on TensorFlow quietly, with the thread count set before TensorFlow starts."""

from __future__ import annotations

import contextlib
import os
import sys
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


# Keras imports these at its own import when they are installed - scikit-learn for its estimator
# wrappers, pandas to take data frames as input, pyplot for an image gallery - and nnlab uses none of
# those parts. Together they were ~2 s of the ~3 s that ``import keras`` takes after TensorFlow.
KERAS_OPTIONAL = ("sklearn", "pandas", "matplotlib")


@contextmanager
def _hidden(names: tuple[str, ...]) -> Iterator[None]:
    """Make ``import name`` fail with ImportError for the duration, as if the package were missing
    (Keras then leaves out what needs it); afterwards each imports normally again, when asked for.
    A package already imported stays as it is."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # Python's marker for "cannot be imported"
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def apply_threads() -> None:
    """TensorFlow's thread pools sized by ``$NNLAB_THREADS``, before its runtime starts. ``keras()`` does it
    once per process; a sweep worker forked from the forkserver (where TensorFlow was imported with the
    forkserver's environment) does it again with its own share."""
    threads = _env_threads()
    if threads:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
        except RuntimeError:
            pass  # the runtime started already: the environment variables applied


@lru_cache(maxsize=1)
def keras() -> Any:
    """Import and return keras (first call ~4 s: it imports TensorFlow)."""
    configure_environment()
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    with _hidden(KERAS_OPTIONAL):
        with _silenced_stderr():  # TensorFlow's C++ start-up notes bypass its own log level
            import tensorflow as tf

        tf.get_logger().setLevel(logging.ERROR)
        apply_threads()
        import keras as _keras

    freeze_imported()
    return _keras


GPU_MEMORY_ENV = "NNLAB_GPU_MEMORY_MB"  # a worker's share of its GPU, set by a sweep that puts several on one


@lru_cache(maxsize=1)
def configure_gpus() -> tuple[str, ...]:
    """The GPUs TensorFlow sees. A run uses the first (a sweep pins each worker to its own), set up before
    its first use so that no process claims a whole device: a memory limit of ``$NNLAB_GPU_MEMORY_MB``
    (one of several sweep workers sharing the GPU), else memory growth (TensorFlow allows one or the
    other per device). Called before a model is
    built, never in the forkserver that sweep workers are forked from (it would start CUDA there)."""
    keras()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        _without_graph_optimizer(tf)
    limit = os.environ.get(GPU_MEMORY_ENV, "")
    if len(gpus) > 1:  # a run trains on one device: the others get no context and no memory from it
        with contextlib.suppress(RuntimeError):
            tf.config.set_visible_devices(gpus[:1], "GPU")
    for gpu in gpus[:1]:
        try:
            if limit.isdigit() and int(limit) > 0:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(limit))])
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):
            pass  # the runtime started already (a second model in this process): as it was set up then
    return tuple(gpu.name for gpu in gpus)


GRAPPLER_ENV = "NNLAB_GRAPPLER"  # "on": keep TensorFlow's graph optimizer on the CPU too


def _without_graph_optimizer(tf: Any) -> None:
    """On the CPU, TensorFlow's graph optimizer (Grappler) is turned off: for nnlab's small models it cost
    more than it gave. It rewrites each traced function once, when the function first runs. One process,
    1 thread, four runs of a cell from a kept model (the first builds and traces), two rounds each, off
    against on: a 4-block MLP's first run 1.05-1.11 s against 1.29-1.30 s, later runs 0.41-0.53 s against
    0.52-0.57 s; a 16-block MLP 1.97-2.06 s against 2.28-2.34 s, later 0.66-0.87 s against 0.77-0.88 s; a
    32-block batch-norm MLP 6.8-7.2 s against 7.9-8.1 s, later 1.78-2.03 s against 1.70-1.78 s (its one
    loss); a 3-block CNN the same within noise. Validation losses equal to every printed digit. On a GPU
    its layout rewrites are what convolutions need: it stays on there. ``$NNLAB_GRAPPLER=on`` keeps it
    on the CPU too."""
    if os.environ.get(GRAPPLER_ENV, "").lower() != "on":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def freeze_imported() -> None:
    """Exempt every object alive now - mostly the imported modules, ~400,000 with TensorFlow and Keras -
    from Python's cyclic garbage collector, so that its full collections (``clear_session`` runs one
    after every sweep run, and allocation while tracing triggers more) scan only what came later:
    with TensorFlow imported one full collection took ~0.2-0.3 s, after this ~15 ms. Garbage is
    collected first, so nothing unreachable is kept for good."""
    import gc

    gc.collect()
    gc.freeze()


def _gradient_registry() -> dict[str, Any] | None:
    """TensorFlow's process-global table of registered gradient functions (None if it moved)."""
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry
    except (ImportError, AttributeError):
        return None
    return registry if isinstance(registry, dict) else None


@contextmanager
def releasing_traced_gradients() -> Iterator[None]:
    """Drop the gradient registrations TensorFlow makes while the block traces functions.

    Every graph-mode ``tf.custom_gradient`` call (Keras's train step makes one, through the
    distribution strategy's ``all_reduce``) registers its gradient function under a fresh name in a
    process-global registry that is never pruned, and that function's closure holds the whole
    traced graph: each fit of a new model leaked ~5-6 MiB, so a worker's memory grew without bound
    (``clear_session`` and ``gc.collect`` cannot reach it). A registration is read only while its
    graph is being traced (``tape.gradient`` inside the trace; a retrace registers anew), so once
    the block is over it can go. Training runs in one thread; another thread tracing at the same
    moment could lose a registration it still needs.
    """
    registry = _gradient_registry()
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in [n for n in list(registry) if n not in before and n.startswith("CustomGradient-")]:
                registry.pop(name, None)


def device_description() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"gpu:{len(gpus)}"
    return f"cpu:{os.cpu_count()}"


def device_tags() -> dict[str, str]:
    """What a run ran on, as MLflow tags: ``nnlab.device`` (``cpu:N`` or ``gpu:N``) and, on GPUs, each
    one's model and compute capability and the CUDA and cuDNN versions TensorFlow was built with."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    details = []
    for gpu in gpus:
        try:
            details.append(tf.config.experimental.get_device_details(gpu))
        except (RuntimeError, ValueError):
            details.append({})
    try:
        build = dict(tf.sysconfig.get_build_info())
    except Exception:  # noqa: BLE001 - a build without the table: nothing to say about CUDA
        build = {}
    return {"nnlab.device": device_description(), **gpu_tags(details, build)}


def gpu_tags(details: list[dict[str, Any]], build: dict[str, Any]) -> dict[str, str]:
    """Tags from TensorFlow's device details (one dict per GPU) and build info; {} without GPUs."""
    if not details:
        return {}
    names = [str(d.get("device_name") or "unknown") for d in details]
    capabilities = [".".join(str(part) for part in d["compute_capability"]) if d.get("compute_capability")
                    else "unknown" for d in details]
    tags = {"nnlab.gpu_name": ", ".join(names), "nnlab.gpu_compute_capability": ", ".join(capabilities)}
    cuda, cudnn = build.get("cuda_version"), build.get("cudnn_version")
    if cuda or cudnn:
        tags["nnlab.cuda_build"] = f"cuda {cuda or '?'}, cudnn {cudnn or '?'}"
    return tags
