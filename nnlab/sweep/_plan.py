"""What a sweep will do, computed from the spec alone: cells, slots, study names, structural hash.

``nnlab plan`` prints it; ``nnlab sweep`` runs exactly it. Nothing here writes anywhere.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from nnlab.errors import SpecError
from nnlab.spec import LEGACY_VALUES, Spec, without_late_defaults
from nnlab.sweep._cells import Cell, make_cells, swept_keys
from nnlab.sweep._pruners import PRUNERS
from nnlab.sweep._samplers import check_sampler
from nnlab.sweep._space import Dimension, build_space

CONFIRM_SEED_OFFSET = 1000  # confirm seeds of a tuned sweep differ from the seed the tuning used
WORKER_STARTUP_S = 8.0  # a worker process: Python, TensorFlow, MLflow and Optuna imports, store checks
RUN_OVERHEAD_S = 1.0  # per run, beyond training: MLflow writes, artifacts, a learning-curve figure


@dataclass(frozen=True)
class Plan:
    spec: Spec
    profile: str | None
    cells: list[Cell]
    cell_specs: dict[str, Spec]
    dims: list[Dimension]
    structure: dict[str, Any] = field(repr=False)

    # -- identity --------------------------------------------------------------------------------
    @property
    def sweep_id(self) -> str:
        return sweep_identity(self.spec.name, self.profile)

    @property
    def sweep_hash(self) -> str:
        return structure_hash(self.structure)

    @property
    def index_study(self) -> str:
        return self.sweep_id

    def tune_study(self, cell: Cell) -> str:
        return f"{self.sweep_id}/{cell.id}/tune"

    def confirm_study(self, cell: Cell) -> str:
        return f"{self.sweep_id}/{cell.id}/confirm"

    def cell(self, cell_id: str) -> Cell:
        for cell in self.cells:
            if cell.id == cell_id:
                return cell
        raise KeyError(cell_id)

    # -- counts ----------------------------------------------------------------------------------
    @property
    def tuned(self) -> bool:
        return bool(self.dims)

    @property
    def trials(self) -> int:
        return self.spec.sweep.trials if self.tuned else 0

    @property
    def seeds(self) -> int:
        return self.spec.sweep.seeds

    @property
    def runs_per_cell(self) -> int:
        return self.trials + self.seeds

    @property
    def total_runs(self) -> int:
        return len(self.cells) * self.runs_per_cell

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "maximize" if self.spec.sweep.resolved_direction == "maximize" else "minimize"

    @property
    def objective(self) -> str:
        return self.spec.sweep.objective

    def confirm_seed(self, index: int) -> int:
        return self.spec.train.seed + (CONFIRM_SEED_OFFSET if self.tuned else 0) + index

    def repeat_values(self, cell: Cell, index: int) -> dict[str, int]:
        """The values confirm repeat ``index`` sets: each seed key at its base value (the cell's) plus the
        confirm offset plus the index, so repeat k of every cell shares them and arms pair by repeat."""
        spec = self.cell_specs[cell.id]
        offset = (CONFIRM_SEED_OFFSET if self.tuned else 0) + index
        out = {}
        for key in self.spec.sweep.seed_keys:
            section, _, name = key.partition(".")
            out[key] = int(getattr(getattr(spec, section), name)) + offset
        return out

    def cell_seed(self, cell: Cell) -> int:
        digest = hashlib.sha256(f"{self.sweep_hash}/{cell.id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def sweep_identity(name: str, profile: str | None) -> str:
    """``depth`` or ``depth@quick``: runs of different profiles never mix."""
    return f"{name}@{profile}" if profile else name


def build_plan(spec: Spec, profile: str | None = None) -> Plan:
    """Validate every cell (and the sampler and pruner) and describe the sweep. Raises SpecError."""
    cells = make_cells(spec.sweep.grid)
    cell_specs: dict[str, Spec] = {}
    for cell in cells:
        try:
            cell_specs[cell.id] = spec.with_values(cell.values)
        except SpecError as exc:
            raise SpecError(f"cell {cell.id}: {exc.detail}", file=exc.file, line=exc.line, key=exc.key) from None
    dims = build_space(spec)
    file, line = spec.where("sweep.sampler")
    try:
        check_sampler(spec.sweep.sampler, dims)
        PRUNERS.get(spec.sweep.pruner)
    except SpecError as exc:
        raise SpecError(exc.detail, file=file, line=line) from None
    return Plan(spec=spec, profile=profile, cells=cells, cell_specs=cell_specs, dims=dims,
                structure=structure_of(spec))


# ------------------------------------------------------------------------------------------------
# structure: what may not change under a running sweep


def structure_of(spec: Spec) -> dict[str, Any]:
    sweep = spec.sweep
    swept = swept_keys(make_cells(sweep.grid)) | set(sweep.tune)
    config = {key: value for key, value in without_late_defaults(spec.flat_params()).items() if key not in swept}
    out = {
        "sweep.grid": {key: list(values) for key, values in sweep.grid.items()},
        "sweep.tune": {key: param.model_dump(mode="json", exclude_none=True) for key, param in sweep.tune.items()},
        "sweep.trials": sweep.trials,
        "sweep.seeds": sweep.seeds,
        "sweep.objective": sweep.objective,
        "sweep.direction": sweep.resolved_direction,
        "config": config,
    }
    if list(sweep.seed_keys) != LEGACY_VALUES["sweep.seed_keys"]:  # what confirm repeats vary
        out["sweep.seed_keys"] = list(sweep.seed_keys)
    return out


def structure_hash(structure: dict[str, Any]) -> str:
    blob = json.dumps(structure, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted key, what changed) for each difference, grid and tune first."""
    changes: list[tuple[str, str]] = []
    for section in ("sweep.grid", "sweep.tune", "config"):
        a, b = old.get(section, {}), new.get(section, {})
        prefix = "" if section == "config" else f"{section}."
        for key in list(a) + [k for k in b if k not in a]:
            name = f"{prefix}{key}"
            if key not in b:
                changes.append((name, f"{name} was removed (it was {_show(a[key])})"))
            elif key not in a:
                changes.append((name, f"{name} was added ({_show(b[key])})"))
            elif a[key] != b[key]:
                changes.append((name, f"{name} changed from {_show(a[key])} to {_show(b[key])}"))
    for key in ("sweep.trials", "sweep.seeds", "sweep.objective", "sweep.direction", "sweep.seed_keys"):
        before, after = old.get(key, LEGACY_VALUES.get(key)), new.get(key, LEGACY_VALUES.get(key))
        if before != after:
            changes.append((key, f"{key} changed from {_show(before)} to {_show(after)}"))
    return changes


# ------------------------------------------------------------------------------------------------
# time estimate


@dataclass(frozen=True)
class Estimate:
    per_run_s: float  # one full run of the measured cells, on average
    measured: list[tuple[str, float, int]]  # (cell id, seconds, epochs) of the measurement runs
    startup_s: float  # per worker: starting Python, TensorFlow, the stores

    def total_s(self, runs: int, workers: int) -> float:
        return self.startup_s + runs * self.per_run_s / max(1, workers)


def measure(plan: Plan, max_epochs: int = 4) -> Estimate:
    """Time short untracked runs of the first and last cells (after a warm-up run) and extrapolate
    to the full epochs. Nothing is written: runs execute without a tracker.
    """
    from nnlab.train import execute, prepare

    picks = [plan.cells[0]] if len(plan.cells) == 1 else [plan.cells[0], plan.cells[-1]]
    per_run, measured = [], []
    # warm-up: data loading and TensorFlow's first tracing happen once per worker, not per run
    execute(prepare(plan.cell_specs[picks[0].id].with_values({"train.epochs": 1})), None, phase="plan",
            figures=False)
    _clear_session()
    for cell in picks:
        spec = plan.cell_specs[cell.id]
        epochs = spec.train.epochs
        short = spec.with_values({"train.epochs": min(epochs, max_epochs)})
        stamps: list[float] = []

        def hook(epoch: int, metrics: dict[str, float], stamps: list[float] = stamps) -> bool:
            stamps.append(time.monotonic())
            return False

        t0 = time.monotonic()
        result = execute(prepare(short), None, phase="plan", epoch_hook=hook, figures=False)
        total = time.monotonic() - t0
        if len(stamps) >= 2:
            # the median interval: one slow epoch on a busy machine (or a late retrace) must not set the pace
            per_epoch = statistics.median(b - a for a, b in itertools.pairwise(stamps))
            fixed = max(0.0, total - per_epoch * len(stamps))
        else:
            per_epoch, fixed = total, 0.0
        per_run.append(fixed + per_epoch * epochs + RUN_OVERHEAD_S)
        measured.append((cell.id, total, result.epochs))
        _clear_session()
    return Estimate(per_run_s=sum(per_run) / len(per_run), measured=measured, startup_s=WORKER_STARTUP_S)


def _clear_session() -> None:
    from nnlab.train._env import keras

    keras().backend.clear_session()


def format_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
