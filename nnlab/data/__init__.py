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
* ``classes`` - keep only these original classes, relabelled 0..k-1 in the order given.
  The whole dataset is split first and the classes are kept within each split, so the
  training pool of every class never holds a validation or test example of any selection
  (with ``standardize_fit: train`` the kept classes are split on their own, as before).
* ``standardize`` - ``feature`` (tabular inputs per feature, images per channel), ``global``
  (one mean and standard deviation over all input values) or ``none``; ``true``/``false``
  mean feature/none. Images are scaled to [0, 1] by their known maximum first, always;
  sequences are never standardized. Regression targets are standardized too (unless
  ``none``), so losses compare across functions and datasets.
* ``standardize_fit`` - ``pool``: the statistics come from the training pool of every class
  (before ``classes`` and ``train_size``, never validation or test), so they are the same
  for every training size and for pretraining and fine-tuning on other classes of one
  dataset. ``train``: the pipeline from before the key - the kept classes split on their
  own and statistics fitted on the training set itself.
* ``augment_space``, ``shift``, ``rotation``, ``zoom``, ``noise_std`` - how strong the
  augmentations ``augment`` lists are and the space they act in; not used here but passed
  to the model builder in ``DataInfo.augmentation`` (with the image statistics in
  ``DataInfo.input_mean``/``input_std``).
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
