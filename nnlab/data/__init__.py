"""Datasets: a registry of loaders and ``load_dataset(cfg)``, which splits and prepares them.

``load_dataset`` reads the spec's data section:

* ``dataset`` - a name in ``DATASETS``; ``dataset_info(name)`` gives its ``task``,
  ``kind`` and accepted ``options`` without loading anything heavy.
* ``val_fraction``, ``test_fraction`` - shares of the whole pool (stratified for
  classification). Datasets with an official test set (mnist, fashion_mnist, cifar10)
  use it and ignore ``test_fraction``; their validation set is ``val_fraction`` of the
  official training part.
* ``train_size`` - an int count or a fraction in (0, 1] of the training pool, or
  ``None`` for all of it. Validation and test never depend on it, and a smaller
  training set is a prefix (subset) of a larger one for the same seed.
* ``label_noise`` - classification: this share of the training labels is replaced by
  uniformly random classes (which may coincide with the true ones); regression:
  Gaussian noise of standard deviation ``label_noise * std(y_train)`` is added to the
  training targets. Validation and test labels stay clean.
* ``classes`` - keep only these original classes, relabelled 0..k-1 in the order given
  (applied before splitting).
* ``standardize`` - fitted on the final training set only, applied to every split:
  tabular inputs per feature, images per channel (after scaling pixels to [0, 1] by
  their known maximum, which always happens), sequences not at all. Regression
  targets are standardized too, so losses compare across functions and datasets.
* ``seed`` - fixes everything: generated data, split, training subset and noise.
* generator options (``GENERATOR_OPTIONS``), ``None`` for the dataset's default. The
  defaults are the keyword defaults of each loader in ``DATASETS``.

Bad values that only the data can reveal raise ``SpecError`` with the ``data.*`` key.
Results are cached in-process; see ``load_dataset``.
"""

from __future__ import annotations

from nnlab.data import _bundled, _downloads, _files, _mnist1d, _sequence, _synthetic  # noqa: F401  (registration)
from nnlab.data._base import DataInfo, Dataset
from nnlab.data._common import DATASETS, GENERATOR_OPTIONS, Raw, register
from nnlab.data._load import DataConfig, clear_cache, dataset_info, load_dataset

__all__ = [
    "DATASETS",
    "GENERATOR_OPTIONS",
    "DataConfig",
    "DataInfo",
    "Dataset",
    "Raw",
    "clear_cache",
    "dataset_info",
    "load_dataset",
    "register",
]
