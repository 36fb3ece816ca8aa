"""Specs: YAML files validated into typed, frozen sections."""

from nnlab.errors import SpecError
from nnlab.spec._cells import Cell, expand, format_value
from nnlab.spec._load import available_studies, resolve_spec_path
from nnlab.spec._params import param_value
from nnlab.spec._schema import (
    LEGACY_VALUES,
    BoundExpect,
    CompareExpect,
    DataSpec,
    GateBound,
    ModelSpec,
    PeakExpect,
    PretrainSpec,
    Spec,
    SweepSpec,
    TrainSpec,
    TrendExpect,
    TuneChoices,
    TuneRange,
    higher_is_better,
    without_late_defaults,
)

__all__ = [
    "BoundExpect", "Cell", "expand", "format_value", "GateBound", "LEGACY_VALUES", "PeakExpect",
    "CompareExpect", "DataSpec", "ModelSpec", "PretrainSpec", "Spec", "SpecError", "SweepSpec", "TrainSpec",
    "TrendExpect", "TuneChoices", "TuneRange", "available_studies", "higher_is_better", "param_value",
    "resolve_spec_path", "without_late_defaults",
]
