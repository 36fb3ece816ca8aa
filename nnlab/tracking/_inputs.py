"""What a run trained and was judged on, as MLflow dataset inputs: one per split.

Each split (``train``, ``validation``, ``test``, an extra evaluation split such as ``ood``, and a
transfer run's ``pretrain`` data) becomes one input: the dataset's name, a digest of the split's arrays,
and the split as the input's context (MLflow's ``mlflow.data.context`` tag). Runs on the same data carry
the same name and digest, so the UI shows them alike and ``search_runs`` finds them
(``dataset.digest = '...'``). The digest covers every byte of the inputs and labels with their shapes
and types: another seed, subset or label noise gives another digest. Nothing is uploaded.

This module builds plain data (no MLflow import); ``Tracker.log_inputs`` turns it into MLflow's
entities.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

DIGEST_CHARS = 16  # MLflow keeps at most 36
# train and validation read as MLflow's own examples name them; other splits keep their names
CONTEXTS = {"train": "train", "val": "validation", "test": "test"}

_digests: dict[int, tuple[Any, str]] = {}  # id(array) -> (weak reference, digest): a dataset is cached per process


def array_digest(x: np.ndarray, y: np.ndarray) -> str:
    """The digest of one split: sha256 over the dtype, shape and bytes of ``x`` and ``y``."""
    h = hashlib.sha256()
    for array in (x, y):
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(array.data)
    return h.hexdigest()[:DIGEST_CHARS]


def _cached_digest(x: np.ndarray, y: np.ndarray) -> str:
    """``array_digest``, remembered while ``x`` lives: the runs of a sweep worker share one loaded dataset."""
    entry = _digests.get(id(x))
    if entry is not None and entry[0]() is x:
        return entry[1]
    digest = array_digest(x, y)
    try:
        _digests[id(x)] = (weakref.ref(x), digest)
    except TypeError:  # not weakly referable (a subclass that forbids it): not remembered
        pass
    if len(_digests) > 256:
        for key in [k for k, (ref, _) in _digests.items() if ref() is None]:
            del _digests[key]
    return digest


def _spec(array: np.ndarray) -> dict[str, Any]:
    return {"dtype": array.dtype.name, "shape": [-1, *(int(d) for d in array.shape[1:])]}


def split_inputs(name: str, splits: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                 path: str | None = None) -> list[dict[str, Any]]:
    """One input per split (``{split: (x, y)}``, empty splits left out), as plain data for ``log_inputs``.

    ``name`` is the dataset's registry name; a CSV file (``path``) is named by its file name and has
    the file as its source."""
    if path is not None:
        file = Path(path).expanduser().resolve()
        name = file.name
        source_type, source = "local", json.dumps({"uri": file.as_uri()})
    else:
        source_type, source = "code", json.dumps({"tags": {"nnlab.dataset": name}})
    out = []
    for split, (x, y) in splits.items():
        if len(x) == 0:
            continue
        out.append({
            "name": name, "digest": _cached_digest(x, y), "context": CONTEXTS.get(split, split),
            "source_type": source_type, "source": source,
            "features": _spec(x), "targets": _spec(y),
            "profile": json.dumps({"num_rows": int(len(x)), "features_shape": list(x.shape),
                                   "targets_shape": list(y.shape)}),
        })
    return out


__all__ = ["array_digest", "split_inputs"]
