"""``load_dataset``: a data spec to split, subsetted, noised and standardized arrays.

The steps, in order: generate or read the whole pool (the loader), keep ``classes``,
split off test and validation, take the ``train_size`` prefix of the training pool,
add ``label_noise`` to the training labels, fit standardization on that training set
and apply it to every split.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from nnlab.data._base import DataInfo, Dataset, Task
from nnlab.data._common import DATASETS, GENERATOR_OPTIONS, Raw, make_rng
from nnlab.data._split import IDENTITY, add_label_noise, fit_inputs, fit_targets, split_indices, train_indices
from nnlab.errors import SpecError


class DataConfig(Protocol):
    """What ``load_dataset`` reads from the spec's data section (see the package doc).

    The generator options (``GENERATOR_OPTIONS``) are read too, by name.
    """

    @property
    def dataset(self) -> str: ...
    @property
    def train_size(self) -> int | float | None: ...
    @property
    def val_fraction(self) -> float: ...
    @property
    def test_fraction(self) -> float: ...
    @property
    def label_noise(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def classes(self) -> Sequence[int] | None: ...
    @property
    def standardize(self) -> bool: ...
    def model_dump_json(self) -> str: ...


class SplitPlan(NamedTuple):
    """Example indices of each split, after ``classes`` filtering.

    ``pool``, ``train`` and ``val`` index the dataset's pool; ``test`` indexes the pool
    too, except for datasets with an official test set, where it indexes that set.
    ``train`` is a prefix of ``pool``.
    """

    pool: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


CACHE_SIZE = 4
_cache: OrderedDict[str, Dataset] = OrderedDict()
_cache_lock = threading.Lock()


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load the dataset a data spec describes; deterministic given ``cfg``.

    Results are cached per process (the ``CACHE_SIZE`` most recent specs, keyed on
    ``cfg.model_dump_json()``): the same spec returns the same object. Its arrays are
    read-only and shared, so callers must not modify them (copy first).
    """
    key = cfg.model_dump_json()
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    dataset = _build(cfg)
    with _cache_lock:
        _cache[key] = dataset
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return dataset


def clear_cache() -> None:
    """Forget every cached dataset."""
    with _cache_lock:
        _cache.clear()


def dataset_info(name: str) -> dict[str, Any]:
    """A dataset's registry metadata: ``task``, ``kind`` and ``options``. Cheap."""
    _check_name(name)
    return dict(DATASETS.meta(name))


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise SpecError(DATASETS.unknown_message(name), key="data.dataset")


def _load_raw(cfg: DataConfig) -> tuple[Raw, Task]:
    """Run the loader with the options given, then keep ``classes``."""
    _check_name(cfg.dataset)
    meta = DATASETS.meta(cfg.dataset)
    given = {name: getattr(cfg, name) for name in GENERATOR_OPTIONS if getattr(cfg, name) is not None}
    for name in given:
        if name not in meta["options"]:
            accepted = ", ".join(sorted(meta["options"])) or "none"
            raise SpecError(f"is not an option of dataset '{cfg.dataset}' (its options: {accepted}), "
                            f"but got {name}={given[name]!r}", key=f"data.{name}")
    raw = DATASETS.get(cfg.dataset)(make_rng(cfg.seed, "generate"), **given)
    task: Task = raw.task or meta["task"]
    return _keep_classes(raw, cfg.classes, cfg.dataset, task), task


def _keep_classes(raw: Raw, classes: Sequence[int] | None, name: str, task: Task) -> Raw:
    if classes is None:
        return raw
    if task != "classification" or raw.n_classes is None:
        raise SpecError(f"applies only to classification datasets, but '{name}' is a {task} dataset "
                        f"and got classes={list(classes)}", key="data.classes")
    chosen = [int(c) for c in classes]
    if len(chosen) < 2:
        raise SpecError(f"must list at least 2 classes, but got {chosen}", key="data.classes")
    if len(set(chosen)) != len(chosen):
        raise SpecError(f"must not repeat a class, but got {chosen}", key="data.classes")
    outside = [c for c in chosen if not 0 <= c < raw.n_classes]
    if outside:
        raise SpecError(f"must be class ids in 0..{raw.n_classes - 1} for dataset '{name}', "
                        f"but got {outside}", key="data.classes")
    absent = [c for c in chosen if not np.any(raw.y == c)]
    if absent:
        raise SpecError(f"must name classes present in dataset '{name}', but got {absent}, "
                        "which have no examples", key="data.classes")

    relabel = np.full(raw.n_classes, -1, dtype=np.int64)
    relabel[chosen] = np.arange(len(chosen))

    def keep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = np.isin(y, chosen)
        return x[mask], relabel[y[mask]]

    x, y = keep(raw.x, raw.y)
    test = keep(*raw.test) if raw.test is not None else None
    extra = {k: keep(*v) for k, v in raw.extra.items()}
    return Raw(x=x, y=y, n_classes=len(chosen), test=test, extra=extra, task=raw.task)


def _plan(raw: Raw, cfg: DataConfig, task: Task) -> SplitPlan:
    has_test = raw.test is not None
    split = split_indices(raw.y, val_fraction=cfg.val_fraction,
                          test_fraction=0.0 if has_test else cfg.test_fraction,
                          seed=cfg.seed, stratify=task == "classification")
    test = np.arange(len(raw.test[1])) if raw.test is not None else split.test
    return SplitPlan(pool=split.pool, train=train_indices(split.pool, cfg.train_size),
                     val=split.val, test=test)


def split_plan(cfg: DataConfig) -> SplitPlan:
    """The indices ``load_dataset(cfg)`` uses for each split (for tests and inspection)."""
    raw, task = _load_raw(cfg)
    return _plan(raw, cfg, task)


def _build(cfg: DataConfig) -> Dataset:
    raw, task = _load_raw(cfg)
    kind = DATASETS.meta(cfg.dataset)["kind"]
    plan = _plan(raw, cfg, task)
    classification = task == "classification"
    x_test, y_test = raw.test if raw.test is not None else (raw.x, raw.y)

    x_train = raw.x[plan.train]
    y_train = add_label_noise(raw.y[plan.train], rate=cfg.label_noise,
                              n_classes=raw.n_classes if classification else None,
                              seed=cfg.seed, pool_size=len(plan.pool))
    scale_x = fit_inputs(x_train, kind) if cfg.standardize else IDENTITY
    scale_y = fit_targets(y_train) if cfg.standardize and not classification else IDENTITY

    def prepare(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = scale_x(x)
        y = y.astype(np.int64) if classification else scale_y(y)
        x.flags.writeable = False
        y.flags.writeable = False
        return x, y

    x_train, y_train = prepare(x_train, y_train)
    x_val, y_val = prepare(raw.x[plan.val], raw.y[plan.val])
    x_test, y_test = prepare(x_test[plan.test], y_test[plan.test])
    extra = {name: prepare(x, y) for name, (x, y) in raw.extra.items()}
    info = DataInfo(
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        task=task,
        kind=kind,
        n_classes=raw.n_classes if classification else None,
        n_outputs=1 if classification else int(y_train.shape[1]),
    )
    return Dataset(name=cfg.dataset, info=info, x_train=x_train, y_train=y_train, x_val=x_val,
                   y_val=y_val, x_test=x_test, y_test=y_test, extra=extra)
