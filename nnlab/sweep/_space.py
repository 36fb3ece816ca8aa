"""The tuned (nuisance) factors as Optuna distributions: float/int ranges and categorical choices.

Parameter names in Optuna are the dotted spec keys (``train.learning_rate``), so Optuna's own
tools show them as they appear in the spec.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nnlab.errors import SpecError
from nnlab.spec import Spec, TuneChoices, TuneRange

MAX_GRID_POINTS = 10_000
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Dimension:
    """One tuned key: either a numeric range or a list of choices."""

    key: str
    kind: str  # "float", "int" or "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    encoded: bool = False  # choices that are not scalars travel through Optuna as JSON strings

    def distribution(self) -> Any:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.kind == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)
        return CategoricalDistribution(self.optuna_choices())

    def optuna_choices(self) -> list[Any]:
        if self.encoded:
            return [json.dumps(c, sort_keys=True) for c in self.choices]
        return list(self.choices)

    def suggest(self, trial: Any) -> Any:
        """Ask the trial for this key; returns the value to put in the spec."""
        if self.kind == "int":
            value = trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        elif self.kind == "float":
            value = trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)
        else:
            value = trial.suggest_categorical(self.key, self.optuna_choices())
        return self.to_spec(value)

    def to_spec(self, optuna_value: Any) -> Any:
        if self.kind == "choice" and self.encoded:
            return json.loads(optuna_value)
        if self.kind == "int":
            return int(optuna_value)
        if self.kind == "float":
            return float(optuna_value)
        return optuna_value

    def to_optuna(self, spec_value: Any) -> Any:
        if self.kind == "choice" and self.encoded:
            return json.dumps(spec_value, sort_keys=True)
        return spec_value

    def from_param(self, text: str) -> Any:
        """The spec value of an MLflow param string (as ``str(value)`` logged it); ValueError if none."""
        if self.kind == "int":
            return int(float(text))
        if self.kind == "float":
            return float(text)
        for choice in self.choices:
            if str(choice) == text or (not isinstance(choice, str) and json.dumps(choice) == text):
                return choice
        raise ValueError(f"{text!r} is not one of the choices of {self.key}")

    def grid_points(self) -> list[Any]:
        """Every value, for the grid sampler; continuous ranges have none."""
        if self.kind == "choice":
            return self.optuna_choices()
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None or self.log:
            raise SpecError(f"sampler 'grid' needs choices or a range with a step, but sweep.tune.{self.key} is "
                            f"a continuous range [{self.low}, {self.high}]")
        n = int(round((self.high - self.low) / self.step)) + 1
        return [round(self.low + i * self.step, 12) for i in range(n) if self.low + i * self.step <= self.high + 1e-12]

    def describe(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(json.dumps(c) if not isinstance(c, str) else c for c in self.choices)
        scale = "log-uniform" if self.log else "uniform"
        step = f" step {self.step:g}" if self.step is not None else ""
        return f"{scale} {self.kind} in [{self.low:g}, {self.high:g}]{step}"


def _current(spec: Spec, key: str) -> Any:
    node: Any = spec
    for part in key.split("."):
        node = getattr(node, part, None)
    return node


def build_space(spec: Spec) -> list[Dimension]:
    """The tune section as dimensions, in spec order."""
    dims = []
    for key, param in spec.sweep.tune.items():
        if isinstance(param, TuneChoices):
            encoded = not all(isinstance(c, _SCALARS) for c in param.choices)
            dims.append(Dimension(key, "choice", choices=tuple(param.choices), encoded=encoded))
        elif isinstance(param, TuneRange):
            current = _current(spec, key)
            floaty = isinstance(current, float) or not param.is_int
            kind = "float" if floaty else "int"
            step = float(param.step) if (param.step is not None and kind == "float") else param.step
            dims.append(Dimension(key, kind, low=param.low, high=param.high, log=param.log, step=step))
    return dims


def grid_space(dims: list[Dimension]) -> dict[str, list[Any]]:
    space = {d.key: d.grid_points() for d in dims}
    size = 1
    for values in space.values():
        size *= len(values)
    if size > MAX_GRID_POINTS:
        raise SpecError(f"sampler 'grid' would enumerate {size} points (more than {MAX_GRID_POINTS}); "
                        "use fewer choices or coarser steps, or another sampler")
    return space
