"""Typed spec sections. Each forbids unknown keys and is frozen.

Registry names (datasets, activations, optimizers, ...) are checked against the
registries; checks that span sections live in ``_checks.py``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nnlab.data._base import Augmentation
from nnlab.registry import REPORTS  # declared where the CLI reads it without pydantic

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"


class Section(BaseModel):
    """Base of every spec section: strict types, unknown keys refused, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)


def _registry_check(registry_getter: Any, value: str) -> str:
    registry = registry_getter()
    if value not in registry:
        raise ValueError(registry.unknown_message(value))
    return value


def _one_of(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        from nnlab.registry import did_you_mean

        raise ValueError(f"unknown {what} {value!r}; expected one of: {', '.join(choices)}"
                         f"{did_you_mean(value, choices)}")
    return value


def _imported(module: str, name: str) -> Callable[[], Any]:
    """A getter for ``name`` in ``module``, imported on the first call: the registries live beside their
    builders, which import this module, so they cannot be imported here when it loads."""

    def get() -> Any:
        return getattr(importlib.import_module(module), name)

    return get


_datasets = _imported("nnlab.data", "DATASETS")
_families = _imported("nnlab.models", "FAMILIES")
_activations = _imported("nnlab.models", "ACTIVATIONS")
_initializers = _imported("nnlab.models", "INITIALIZERS")
_augmentations = _imported("nnlab.models", "AUGMENTATIONS")
_downsample_rules = _imported("nnlab.models", "DOWNSAMPLE_RULES")
_optimizers = _imported("nnlab.train._optim", "OPTIMIZERS")
_schedules = _imported("nnlab.train._optim", "SCHEDULES")
_samplers = _imported("nnlab.sweep._samplers", "SAMPLERS")
_pruners = _imported("nnlab.sweep._pruners", "PRUNERS")


def _data_choices() -> dict[str, tuple[str, ...]]:
    from typing import get_args

    from nnlab.data._base import AugmentSpace
    from nnlab.data._split import STANDARDIZE_FITS, STANDARDIZE_MODES

    return {"standardize": STANDARDIZE_MODES, "standardize_fit": STANDARDIZE_FITS,
            "augment_space": get_args(AugmentSpace)}


_AUGMENTATION = Augmentation()  # the default strengths, defined once with the data package
PosInt = Annotated[int, Field(ge=1)]
Fraction01 = Annotated[float, Field(ge=0.0, le=1.0)]


class DataSpec(Section):
    dataset: str = "digits"
    train_size: int | float | None = None
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    label_noise: Fraction01 = 0.0
    augment: list[str] = Field(default_factory=list)
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    # none, feature (per feature or image channel) or global; true and false are kept as written and
    # mean feature and none (specs from before the modes keep their hash with them)
    standardize: str | bool = "feature"
    standardize_fit: str = "pool"  # pool: the training pool of every class; train: the training set
    classes: list[Annotated[int, Field(ge=0)]] | None = None
    # augmentation strengths (used only for the augmentations data.augment lists) and their space
    augment_space: str = "raw"
    shift: Annotated[float, Field(gt=0.0, le=1.0)] = _AUGMENTATION.shift
    rotation: Annotated[float, Field(gt=0.0, le=180.0)] = _AUGMENTATION.rotation
    zoom: Annotated[float, Field(gt=0.0, lt=1.0)] = _AUGMENTATION.zoom
    noise_std: Annotated[float, Field(gt=0.0, le=100.0)] = _AUGMENTATION.noise_std
    # generator options of synthetic sets; None = the dataset's own default
    n_samples: Annotated[int, Field(ge=2, le=10_000_000)] | None = None
    noise: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    n_features: Annotated[int, Field(ge=1, le=100_000)] | None = None
    n_classes: Annotated[int, Field(ge=2, le=10_000)] | None = None
    seq_len: Annotated[int, Field(ge=1, le=100_000)] | None = None
    canvas: Annotated[int, Field(ge=1, le=100_000)] | None = None
    function: str | None = None
    x_range: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    ood_range: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    # CSV files
    path: str | None = None
    target: str | None = None

    @field_validator("dataset")
    @classmethod
    def _dataset_known(cls, v: str) -> str:
        return _registry_check(_datasets, v)

    @field_validator("standardize", "standardize_fit", "augment_space")
    @classmethod
    def _choice_known(cls, v: str | bool, info: ValidationInfo) -> str | bool:
        name = str(info.field_name)
        if name == "standardize":
            if isinstance(v, bool):
                return v
            if v not in _data_choices()[name]:
                raise ValueError(f"must be one of none, feature, global (or true, false), but got {v!r}")
            return v
        return _one_of(str(v), _data_choices()[name], name)

    @field_validator("augment")
    @classmethod
    def _augment_known(cls, v: list[str]) -> list[str]:
        for name in v:
            _registry_check(_augmentations, name)
        if len(set(v)) != len(v):
            raise ValueError(f"lists an augmentation twice: {v}")
        return v

    @field_validator("train_size")
    @classmethod
    def _train_size_range(cls, v: int | float | None) -> int | float | None:
        if v is None:
            return v
        if isinstance(v, bool) or (isinstance(v, int) and v < 1) or (isinstance(v, float) and not 0.0 < v <= 1.0):
            raise ValueError(f"must be an integer count >= 1 or a fraction in (0, 1], but got {v!r}")
        return v

    @field_validator("x_range", "ood_range")
    @classmethod
    def _range_order(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"must be [low, high] with low < high, but got {v}")
        return v

    @model_validator(mode="after")
    def _fractions(self) -> DataSpec:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must be < 0.9, but got "
                             f"{self.val_fraction} + {self.test_fraction}")
        return self


class ModelSpec(Section):
    family: str = "mlp"
    depth: Annotated[int, Field(ge=1, le=512)] = 2
    width: Annotated[int, Field(ge=1, le=16_384)] = 64
    activation: str = "relu"
    normalization: Literal["none", "batch", "layer"] = "none"
    residual: bool = False
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    l1: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    l2: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    initializer: str = "auto"
    # family options
    cell: Literal["lstm", "gru", "simple"] = "lstm"
    heads: Annotated[int, Field(ge=1, le=256)] = 4
    kernel_size: Annotated[int, Field(ge=1, le=64)] = 3
    pool: Literal["max", "avg", "none"] = "max"
    downsample: str = "cover"  # where the cnn pools and by how much (nnlab.models._cnn)
    ffn_multiplier: Annotated[int, Field(ge=1, le=16)] = 2

    @field_validator("family")
    @classmethod
    def _family_known(cls, v: str) -> str:
        return _registry_check(_families, v)

    @field_validator("activation")
    @classmethod
    def _activation_known(cls, v: str) -> str:
        return _registry_check(_activations, v)

    @field_validator("initializer")
    @classmethod
    def _initializer_known(cls, v: str) -> str:
        return _registry_check(_initializers, v)

    @field_validator("downsample")
    @classmethod
    def _downsample_known(cls, v: str) -> str:
        return _one_of(v, _downsample_rules(), "downsample rule")


class PretrainSpec(Section):
    """Pretraining before the main fit (transfer): the same model trained on other data first."""

    classes: list[Annotated[int, Field(ge=0)]] | None = None
    dataset: str | None = None
    train_size: int | float | None = None
    epochs: Annotated[int, Field(ge=0, le=100_000)] = 10  # 0 = no pretraining (the from-scratch baseline)
    learning_rate: Annotated[float, Field(gt=0.0, le=100.0)] | None = None
    freeze: bool = False  # freeze the pretrained body while fine-tuning


# Keys added after stores existed, with their defaults. At the default they are left out of what
# identifies a spec or a sweep (``Spec.spec_hash``, a sweep's structure, from which its sampler seeds
# derive), so that a sweep started before them resumes, and draws the same trials, unchanged.
LATE_DEFAULTS: dict[str, Any] = {
    "train.precision": "float32", "train.jit_compile": "auto", "train.deterministic": False,
    # augmentation strengths: the values the augmentations had built in (in the space they act in)
    "data.shift": _AUGMENTATION.shift, "data.rotation": _AUGMENTATION.rotation, "data.zoom": _AUGMENTATION.zoom,
    "data.noise_std": _AUGMENTATION.noise_std,
    "data.canvas": None,
}
# Keys added later whose default changed what a sweep does, with the value that reproduces the behaviour
# from before them. At that value they are left out of the hashes (an old sweep resumes when the spec says
# so); at any other value, the new default included, they count, so an old sweep is not silently mixed.
LEGACY_VALUES: dict[str, Any] = {
    "sweep.seed_keys": ["train.seed"],
    # the cnn pooled by 2 after every second block but the last (a 2-block net never pooled)
    "model.downsample": "alternate",
    # classes were split on their own and standardization fitted on the training set
    # (an old spec also writes data.standardize: true, since the default is now spelled feature)
    "data.standardize_fit": "train",
    # augmentation acted on standardized inputs, filling with the mean, noise_std in standardized units
    "data.augment_space": "standardized",
}
SEED_KEY_DEFAULT = ("train.seed", "data.seed")


def without_late_defaults(flat: dict[str, Any]) -> dict[str, Any]:
    """``flat`` (dotted keys) less the keys of ``LATE_DEFAULTS`` that hold their default and those of
    ``LEGACY_VALUES`` that hold their legacy value (what a sweep's identity leaves out, like the hash)."""
    left_out = {**LATE_DEFAULTS, **LEGACY_VALUES}
    return {key: value for key, value in flat.items() if not (key in left_out and value == left_out[key])}


class TrainSpec(Section):
    optimizer: str = "adam"
    learning_rate: Annotated[float, Field(gt=0.0, le=1000.0)] = 1e-3
    schedule: str = "none"
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    weight_decay: Annotated[float, Field(ge=0.0, le=10.0)] = 1e-4
    clipnorm: Annotated[float, Field(gt=0.0)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 32
    epochs: Annotated[int, Field(ge=1, le=100_000)] = 20
    early_stopping: Annotated[int, Field(ge=1, le=100_000)] | None = None
    restore_best: bool = True
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    steps_per_execution: Annotated[int, Field(ge=1, le=100_000)] | Literal["auto"] = "auto"
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: bool | Literal["auto"] = "auto"
    deterministic: bool = False  # TensorFlow's op determinism (GPU kernels); CPU runs are repeatable either way
    diagnostics: bool = True
    pretrain: PretrainSpec | None = None

    @field_validator("optimizer")
    @classmethod
    def _optimizer_known(cls, v: str) -> str:
        return _registry_check(_optimizers, v)

    @field_validator("schedule")
    @classmethod
    def _schedule_known(cls, v: str) -> str:
        return _registry_check(_schedules, v)


class TuneRange(Section):
    low: int | float
    high: int | float
    log: bool = False
    step: Annotated[int | float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TuneRange:
        if not self.low < self.high:
            raise ValueError(f"needs low < high, but got low={self.low!r}, high={self.high!r}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, but got low={self.low!r}")
        if self.log and self.step is not None:
            raise ValueError("takes either log or step, not both")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high)) and (
            self.step is None or isinstance(self.step, int))


class TuneChoices(Section):
    choices: Annotated[list[Any], Field(min_length=1)]


def _tune_kind(item: Any) -> str:
    if isinstance(item, dict):
        return "choices" if "choices" in item else "range"
    return "choices" if isinstance(item, TuneChoices) else "range"


TuneParam = Annotated[
    Annotated[TuneRange, Tag("range")] | Annotated[TuneChoices, Tag("choices")],
    Discriminator(_tune_kind),
]


class SweepSpec(Section):
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    tune: dict[str, TuneParam] = Field(default_factory=dict)
    trials: Annotated[int, Field(ge=0, le=100_000)] = 0
    seeds: Annotated[int, Field(ge=0, le=10_000)] = 1
    objective: str = "val_loss"
    direction: Literal["minimize", "maximize"] | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    workers: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = "auto"
    # the integer keys every confirm repeat sets: repeat k of every cell gets the same values (paired arms)
    seed_keys: Annotated[list[str], Field(min_length=1)] = Field(default_factory=lambda: list(SEED_KEY_DEFAULT))
    # a worker keeps a cell's compiled model for the cell's next run when only seeds and a constant learning
    # rate differ (same results, traced once; see nnlab.train._reuse); false: every run builds and compiles
    reuse: bool = True
    # a cell's runs (confirm repeats; tune trials its sampler draws before any result) trained together as
    # one stacked computation, each still its own run (same results within float32 rounding; see
    # nnlab.train._cohort): auto = up to 8 on the CPU, 32 on a GPU; 1 = one Keras model per run
    cohort: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = "auto"

    @field_validator("seed_keys")
    @classmethod
    def _seed_keys_distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"lists a key twice: {v}")
        return v

    @field_validator("sampler")
    @classmethod
    def _sampler_known(cls, v: str) -> str:
        return _registry_check(_samplers, v)

    @field_validator("pruner")
    @classmethod
    def _pruner_known(cls, v: str) -> str:
        return _registry_check(_pruners, v)

    @model_validator(mode="after")
    def _trials_for_tune(self) -> SweepSpec:
        if self.tune and self.trials < 1:
            raise ValueError("sweep.trials must be >= 1 when sweep.tune is given, but got "
                             f"{self.trials}")
        if not self.tune and self.trials:
            raise ValueError(f"sweep.trials is {self.trials} but sweep.tune is empty; "
                             "give tune ranges or drop trials")
        if not self.tune and self.seeds < 1:
            raise ValueError("sweep.seeds must be >= 1 when nothing is tuned, but got 0")
        return self

    @property
    def resolved_direction(self) -> str:
        if self.direction is not None:
            return self.direction
        return "maximize" if higher_is_better(self.objective) else "minimize"


def higher_is_better(metric: str) -> bool:
    """Accuracy-like metrics are maximized; losses and errors minimized."""
    name = metric.lower()
    return any(word in name for word in ("accuracy", "auc", "r2", "precision", "recall", "f1"))


Scalar = str | int | float | bool


class GateBound(Section):
    """An inline requirement of a claim: a metric above and/or below a value in every selected cell."""

    kind: Literal["bound"] = "bound"
    metric: str
    above: float | None = None
    below: float | None = None
    where: dict[str, Scalar] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_bound(self) -> GateBound:
        _check_bounds(self.above, self.below)
        return self


def _check_bounds(above: float | None, below: float | None) -> None:
    if above is None and below is None:
        raise ValueError("a bound needs 'above', 'below' or both")
    if above is not None and below is not None and not above < below:
        raise ValueError(f"needs above < below, but got above={above}, below={below}")


# ``requires:`` items: the name of another claim of the spec, or an inline bound
Requirement = str | GateBound


class CompareExpect(Section):
    kind: Literal["compare"] = "compare"
    name: str | None = None
    requires: list[Requirement] = Field(default_factory=list)
    metric: str
    better: Annotated[dict[str, Scalar], Field(min_length=1)]
    than: Annotated[dict[str, Scalar], Field(min_length=1)]
    where: dict[str, Scalar] = Field(default_factory=dict)
    higher_is_better: bool | None = None


class TrendExpect(Section):
    kind: Literal["trend"] = "trend"
    name: str | None = None
    requires: list[Requirement] = Field(default_factory=list)
    metric: str
    along: str
    should: Literal["increase", "decrease"]
    where: dict[str, Scalar] = Field(default_factory=dict)


class BoundExpect(GateBound):
    """A metric should lie above and/or below a value (in every selected cell): a named, gateable bound."""

    name: str | None = None
    requires: list[Requirement] = Field(default_factory=list)


class PeakExpect(Section):
    """The metric along a grid key has an interior extremum: some value strictly between the ends beats
    both ends (``should: max`` - higher there; ``min`` - lower there), with intervals clear of them."""

    kind: Literal["peak"] = "peak"
    name: str | None = None
    requires: list[Requirement] = Field(default_factory=list)
    metric: str
    along: str
    should: Literal["max", "min"]
    where: dict[str, Scalar] = Field(default_factory=dict)


def split_key(key: str) -> tuple[Any, ...]:
    from nnlab.spec._load import split_dotted

    return split_dotted(key)


EXPECT_KINDS = ("compare", "trend", "bound", "peak")
Expect = CompareExpect | TrendExpect | BoundExpect | PeakExpect


def _expect_item(item: Any) -> Any:
    """Accept ``{kind: compare, ...}`` and the short form ``{compare: {...}}``."""
    if isinstance(item, dict) and len(item) == 1:
        (key, body), = item.items()
        if key in EXPECT_KINDS and isinstance(body, dict):
            return {"kind": key, **body}
    return item


class Spec(Section):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str = ""
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    expect: list[Annotated[Expect, Field(discriminator="kind")]] = Field(
        default_factory=list)
    report: list[str] = Field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)

    _source: str = PrivateAttr(default="<dict>")
    _located: Any = PrivateAttr(default=None)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: Any, overrides: list[str] | tuple[str, ...] = (), profile: str | None = None) -> Spec:
        """Read a spec file (or a study name in experiments/), apply a profile and overrides, validate."""
        from nnlab.spec._load import load_spec

        return load_spec(path, overrides, profile)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> Spec:
        from nnlab.spec._load import spec_from_dict

        return spec_from_dict(data, source=source)

    def _attach(self, source: str, located: Any) -> None:
        self._source = source
        self._located = located

    @property
    def source(self) -> str:
        return self._source

    def where(self, key: str | tuple[Any, ...]) -> tuple[str, int]:
        """The file and line a dotted key (or key path) came from (its nearest located ancestor)."""
        from nnlab.spec._load import split_dotted

        if self._located is None:
            return (self._source, 1)
        path = split_dotted(key) if isinstance(key, str) else key
        return self._located.locate(path) or (self._source, 1)

    def locate(self, error: Any) -> Any:
        """Give a SpecError raised outside the loader (e.g. by a data loader) this spec's file and line."""
        from nnlab.errors import SpecError

        if error.file is not None:
            return error
        file, line = self.where(error.key or "")
        return SpecError(error.detail, file=file, line=line, key=error.key)

    def with_values(self, values: dict[str, Any]) -> Spec:
        """A new, validated spec with dotted keys set (a sweep cell, a trial's parameters, a seed)."""
        import copy

        from nnlab.spec._load import set_dotted, validate_located
        from nnlab.spec._yaml import Located

        base = self._located if self._located is not None else Located(data=self.model_dump(mode="json"))
        located = Located(data=copy.deepcopy(base.data), where=dict(base.where))
        for key, value in values.items():
            origin = located.locate(split_key(key)) or (self._source, 1)
            set_dotted(located, key, copy.deepcopy(value), origin, f"value {key}={value!r}")
        return validate_located(located, self._source, default_name=self.name, sweep_checks=False)

    # -- views ----------------------------------------------------------------------------------
    def flat_params(self, *, applicable: bool = False) -> dict[str, Any]:
        """Every resolved dotted key of data, model and train: what identifies a run or a sweep.

        ``applicable=True``: the keys that act on this spec's runs, none of them None (a run's MLflow
        params). Left out: the options of other model families and datasets (the registries' ``options``),
        the strengths of augmentations ``data.augment`` does not list (each augmentation's ``key``) and
        ``data.augment_space`` without any, ``train.momentum`` and ``train.weight_decay`` for optimizers
        that ignore them (see ``nnlab.train._optim``), ``train.restore_best`` without early stopping, and
        every None or empty list not swept (``data.train_size`` None means all: the runner logs the count). A dataset
        option left at None is its loader's default. Keys the sweep sets (grid, linked factors, tune, seed
        keys) stay as set whenever they are not None, so the runs of every cell share their columns and a
        report finds each run's cell.
        """
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}", v)
            else:
                out[prefix] = value

        dumped = self.model_dump(mode="json")
        for section in ("data", "model", "train"):
            walk(section, dumped[section])
        if not applicable:
            return out

        import inspect

        from nnlab.data import GENERATOR_OPTIONS
        from nnlab.spec._cells import is_linked, linked_values

        swept = {*self.sweep.tune, *self.sweep.seed_keys}
        for key, values in self.sweep.grid.items():
            swept |= {k for v in values for k in linked_values(v)} if is_linked(key) else {key}
        families = _families()
        datasets = _datasets()
        augmentations = _augmentations()
        dropped = {f"model.{o}" for name in families for o in families.meta(name)["options"]}
        dropped -= {f"model.{o}" for o in families.meta(self.model.family)["options"]}
        dataset_options = datasets.meta(self.data.dataset)["options"]
        dropped |= {f"data.{o}" for o in GENERATOR_OPTIONS if o not in dataset_options}
        defaults = inspect.signature(datasets.get(self.data.dataset)).parameters
        for option in dataset_options:
            key, default = f"data.{option}", defaults[option].default if option in defaults else None
            if out.get(key) is None and key not in swept and default is not inspect.Parameter.empty:
                out[key] = list(default) if isinstance(default, tuple) else default
        strengths = {name: augmentations.meta(name).get("key") for name in augmentations}
        dropped |= {key for name, key in strengths.items() if key and name not in self.data.augment}
        if not self.data.augment:
            dropped.add("data.augment_space")
        optimizers = _optimizers()
        read = set(optimizers.meta(self.train.optimizer).get("options", ()))
        dropped |= {f"train.{o}" for name in optimizers for o in optimizers.meta(name).get("options", ())
                    if o not in read}
        if self.train.early_stopping is None:
            dropped.add("train.restore_best")
        # a swept key keeps an empty list: it is how a cell says "none" (data.augment: [] is the un-augmented arm)
        return {key: value for key, value in out.items()
                if value is not None and (key in swept or (value != [] and key not in dropped))}

    def resolved(self) -> dict[str, Any]:
        """The resolved spec as plain data (profiles dropped: they are already applied)."""
        data = self.model_dump(mode="json", exclude={"profiles"})
        return data

    def spec_hash(self) -> str:
        """A stable hash of everything that changes what a run computes."""
        import hashlib
        import json

        data = self.model_dump(mode="json", include={"data", "model", "train", "sweep"})
        for dotted, default in {**LATE_DEFAULTS, **LEGACY_VALUES}.items():
            section, key = dotted.split(".", 1)
            if data[section].get(key) == default:
                del data[section][key]
        for how in ("reuse", "cohort"):  # how a worker runs the runs, not what they compute
            data["sweep"].pop(how, None)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.resolved(), sort_keys=False, default_flow_style=False)

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_forms(cls, v: Any) -> Any:
        return [_expect_item(i) for i in v] if isinstance(v, list) else v

    @field_validator("report")
    @classmethod
    def _reports_known(cls, v: list[str]) -> list[str]:
        for name in v:
            _one_of(name, REPORTS, "report")
        return v

    @field_validator("profiles")
    @classmethod
    def _profile_names(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for key in v:
            if not re.match(NAME_PATTERN, key):
                raise ValueError(f"profile name {key!r} must match {NAME_PATTERN}")
        return v


SECTION_MODELS: dict[str, type[Section]] = {
    "data": DataSpec, "model": ModelSpec, "train": TrainSpec,
}
TOP_LEVEL_KEYS = ("name", "description", "extends", "data", "model", "train", "sweep", "expect", "report",
                  "profiles")
