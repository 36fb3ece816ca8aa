"""Specs: YAML files validated into typed, frozen sections."""

from nnlab.errors import SpecError
from nnlab.spec._load import available_studies, resolve_spec_path
from nnlab.spec._schema import (
    CompareExpect,
    DataSpec,
    ModelSpec,
    PretrainSpec,
    Spec,
    SweepSpec,
    TrainSpec,
    TrendExpect,
    TuneChoices,
    TuneRange,
    higher_is_better,
)

__all__ = [
    "CompareExpect", "DataSpec", "ModelSpec", "PretrainSpec", "Spec", "SpecError", "SweepSpec", "TrainSpec",
    "TrendExpect", "TuneChoices", "TuneRange", "available_studies", "higher_is_better", "resolve_spec_path",
]
