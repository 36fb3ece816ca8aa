"""``load_dataset``: a data spec to split, subsetted, noised and standardized arrays.

The steps, in order: generate or read the whole set (the loader); split off test and
validation; keep ``classes`` in each split; take the ``train_size`` prefix of the training
pool; add ``label_noise`` to the training labels; fit standardization on the training pool of
every class (``standardize_fit: pool``) and apply it to every split.

``standardize_fit: train`` reproduces the pipeline from before that key: ``classes`` are kept
first and split on their own, and standardization is fitted on the training set (the
``train_size`` prefix, noisy targets included).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, cast, get_args

import numpy as np

from nnlab.data._base import Augmentation, AugmentSpace, DataInfo, Dataset, Kind, Task
from nnlab.data._common import DATASETS, GENERATOR_OPTIONS, Raw, make_rng
from nnlab.data._split import (
    IDENTITY,
    Standardizer,
    add_label_noise,
    fit_inputs,
    fit_targets,
    split_indices,
    standardize_mode,
    train_indices,
)
from nnlab.errors import SpecError


class DataConfig(Protocol):
    """What ``load_dataset`` reads from the spec's data section (see the package doc).

    The generator options (``GENERATOR_OPTIONS``) are read too, by name. The augmentation
    strengths are not used here: they travel to the model builder in ``DataInfo.augmentation``.
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
    def standardize(self) -> str | bool: ...
    @property
    def standardize_fit(self) -> str: ...
    @property
    def augment_space(self) -> str: ...
    @property
    def shift(self) -> float: ...
    @property
    def rotation(self) -> float: ...
    @property
    def zoom(self) -> float: ...
    @property
    def noise_std(self) -> float: ...
    def model_dump_json(self) -> str: ...


class SplitPlan(NamedTuple):
    """Example indices of each split, into the dataset's examples as the loader returned them.

    ``pool``, ``train``, ``val`` and ``fit`` index the loader's ``x``; ``test`` does too, except
    for datasets with an official test set, where it indexes that set. ``pool``, ``train``,
    ``val`` and ``test`` hold only the kept ``classes``; ``train`` is a prefix of ``pool``.
    ``fit`` is what input (and regression target) standardization is fitted on: never a
    validation or test example.
    """

    pool: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    fit: np.ndarray


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
    """Run the loader with the options given."""
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
    return raw, task


def _relabel(raw: Raw, classes: Sequence[int] | None, name: str, task: Task) -> np.ndarray | None:
    """The new label of each original class (-1: dropped) for ``classes``; None keeps every class."""
    if classes is None:
        return None
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
    return relabel


def _kept(indices: np.ndarray, y: np.ndarray, relabel: np.ndarray | None) -> np.ndarray:
    return indices if relabel is None else indices[relabel[y[indices]] >= 0]


def _plan(raw: Raw, cfg: DataConfig, task: Task, relabel: np.ndarray | None) -> SplitPlan:
    has_test = raw.test is not None
    fractions = {"val_fraction": cfg.val_fraction, "test_fraction": 0.0 if has_test else cfg.test_fraction}
    stratify = task == "classification"
    official = np.arange(len(raw.test[1])) if raw.test is not None else None
    if cfg.standardize_fit == "train":  # the kept classes split on their own; fitted on the training set
        kept = _kept(np.arange(len(raw.y)), raw.y, relabel)
        labels = raw.y[kept] if relabel is None else relabel[raw.y[kept]]
        split = split_indices(labels, **fractions, seed=cfg.seed, stratify=stratify)
        pool, val, test = kept[split.pool], kept[split.val], kept[split.test]
        train = train_indices(pool, cfg.train_size)
        fit = train
    else:  # every class split together, so the training pool of every class never holds val or test
        split = split_indices(raw.y, **fractions, seed=cfg.seed, stratify=stratify)
        pool, val, test = (_kept(part, raw.y, relabel) for part in split)
        _check_kept_sizes(len(raw.y), len(pool), len(val), len(test), relabel, **fractions)
        train = train_indices(pool, cfg.train_size)
        fit = split.pool
    if raw.test is not None and official is not None:
        test = _kept(official, raw.test[1], relabel)
    return SplitPlan(pool=pool, train=train, val=val, test=test, fit=fit)


def _check_kept_sizes(n: int, n_pool: int, n_val: int, n_test: int, relabel: np.ndarray | None, *,
                      val_fraction: float, test_fraction: float) -> None:
    if relabel is None:
        return  # split_indices checked the whole set
    if n_pool < 2 or (val_fraction > 0 and n_val < 1) or (test_fraction > 0 and n_test < 1):
        raise SpecError(
            f"the dataset has {n} examples, and the classes kept leave {n_pool} for training, {n_val} for "
            f"validation and {n_test} for test with val_fraction={val_fraction} and "
            f"test_fraction={test_fraction} (each split needs at least one example and the training pool "
            f"two); keep more classes or use larger fractions", key="data.classes")


def split_plan(cfg: DataConfig) -> SplitPlan:
    """The indices ``load_dataset(cfg)`` uses for each split (for tests and inspection)."""
    raw, task = _load_raw(cfg)
    return _plan(raw, cfg, task, _relabel(raw, cfg.classes, cfg.dataset, task))


def _channel_stats(scale: Standardizer, kind: Kind, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of an image standardizer (what raw-space augmentation undoes)."""
    if kind != "image" or scale.mean is None or scale.std is None:
        return (), ()
    mean = np.broadcast_to(scale.mean, (channels,))
    std = np.broadcast_to(scale.std, (channels,))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _augmentation(cfg: DataConfig) -> Augmentation:
    space = cfg.augment_space
    if space not in get_args(AugmentSpace):
        raise SpecError(f"must be one of {', '.join(get_args(AugmentSpace))}, but got {space!r}",
                        key="data.augment_space")
    return Augmentation(space=cast(AugmentSpace, space), shift=float(cfg.shift), rotation=float(cfg.rotation),
                        zoom=float(cfg.zoom), noise_std=float(cfg.noise_std))


def _build(cfg: DataConfig) -> Dataset:
    raw, task = _load_raw(cfg)
    kind = DATASETS.meta(cfg.dataset)["kind"]
    relabel = _relabel(raw, cfg.classes, cfg.dataset, task)
    plan = _plan(raw, cfg, task, relabel)
    classification = task == "classification"
    n_classes = raw.n_classes if relabel is None else int(relabel.max()) + 1
    mode = standardize_mode(cfg.standardize)
    x_test, y_test = raw.test if raw.test is not None else (raw.x, raw.y)

    def labels(y: np.ndarray) -> np.ndarray:
        return y if relabel is None else relabel[y]

    x_train = raw.x[plan.train]
    y_train = add_label_noise(labels(raw.y[plan.train]), rate=cfg.label_noise,
                              n_classes=n_classes if classification else None,
                              seed=cfg.seed, pool_size=len(plan.pool))
    legacy = cfg.standardize_fit == "train"
    scale_x = fit_inputs(x_train if legacy else raw.x[plan.fit], kind, mode)
    scale_y = IDENTITY
    if mode != "none" and not classification:
        scale_y = fit_targets(y_train if legacy else raw.y[plan.fit])

    def prepare(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = scale_x(x)
        y = y.astype(np.int64) if classification else scale_y(y)
        x.flags.writeable = False
        y.flags.writeable = False
        return x, y

    x_train, y_train = prepare(x_train, y_train)
    x_val, y_val = prepare(raw.x[plan.val], labels(raw.y[plan.val]))
    x_test, y_test = prepare(x_test[plan.test], labels(y_test[plan.test]))
    extra = {}
    for name, (x, y) in raw.extra.items():
        mask = np.ones(len(y), dtype=bool) if relabel is None else relabel[y] >= 0
        extra[name] = prepare(x[mask], labels(y[mask]))
    input_shape = tuple(int(d) for d in x_train.shape[1:])
    input_mean, input_std = _channel_stats(scale_x, kind, input_shape[-1])
    info = DataInfo(
        input_shape=input_shape,
        task=task,
        kind=kind,
        n_classes=n_classes if classification else None,
        n_outputs=1 if classification else int(y_train.shape[1]),
        input_mean=input_mean,
        input_std=input_std,
        augmentation=_augmentation(cfg),
    )
    return Dataset(name=cfg.dataset, info=info, x_train=x_train, y_train=y_train, x_val=x_val,
                   y_val=y_val, x_test=x_test, y_test=y_test, extra=extra)
