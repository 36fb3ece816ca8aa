"""Shared helpers of the analysis tests: specs on disk, and synthetic sweeps written to MLflow.

A synthetic sweep follows the sweep engine's MLflow contract (one parent run tagged
``nnlab.phase=sweep``; children tagged with phase, cell, slot, trial, seed index and status;
every resolved spec key as a param; per-epoch metrics) without training anything, so the
report's reading and drawing can be tested and timed on thousands of runs.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml


def write_spec(folder: Path, name: str, body: dict[str, Any]) -> Path:
    """A spec file ``folder/name.yaml`` with ``name:`` set."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **body}, sort_keys=False))
    return path


def cell_id(values: dict[str, Any]) -> str:
    return ",".join(f"{key}={values[key]}" for key in sorted(values))


def cells_of(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


# ------------------------------------------------------------------------------------------------
# a synthetic outcome: U-shaped in log learning rate, worse with depth for plain sigmoid nets,
# vanishing gradients in early layers of plain sigmoid nets, a train-validation gap that shrinks
# with data and dropout.


def synthetic_run(values: dict[str, Any], rng: np.random.Generator, epochs: int) -> tuple[str, dict[str, list[float]]]:
    depth = int(values.get("model.depth", 2))
    act = str(values.get("model.activation", "relu"))
    residual = bool(values.get("model.residual", False))
    lr = float(values.get("train.learning_rate", 1e-3))
    dropout = float(values.get("model.dropout", 0.0))
    size = values.get("data.train_size")
    frac = 1.0 if size is None else (float(size) if float(size) <= 1 else min(1.0, float(size) / 1000))
    log_lr = math.log10(lr)
    centre = -2.5 - (0.0 if residual else 0.04 * depth)
    plain_sigmoid = act == "sigmoid" and not residual
    floor = 0.15 + 0.3 * (log_lr - centre) ** 2 + (0.05 * depth if plain_sigmoid else 0.0) + 0.02 * rng.normal()
    gap_final = max(0.01, 0.35 * (1 - frac) + 0.1 - 0.3 * dropout + 0.01 * rng.normal())
    diverge_at = -0.7 - (0.0 if residual else 0.03 * depth)
    diverged = log_lr > diverge_at
    n_epochs = 1 + int(rng.integers(0, epochs)) if diverged else epochs
    factor = 0.5 if plain_sigmoid else (0.9 if not residual else 1.0)
    hist: dict[str, list[float]] = {}
    for t in range(n_epochs):
        decay = math.exp(-(t + 1) / max(1.0, epochs / 4))
        loss = floor + (2.3 - floor) * decay
        val = loss + gap_final * (1 - decay)
        if diverged and t == n_epochs - 1:
            loss, val = float("nan"), float("nan")
        row = {"loss": loss, "val_loss": val, "accuracy": math.exp(-loss), "val_accuracy": math.exp(-val)}
        for layer in range(1, depth + 1):
            row[f"grad_norm/hidden_{layer:02d}"] = 0.5 * factor ** (depth - layer) * (1 + 0.05 * rng.normal())
        stat = "dead_units" if act == "relu" else "saturated_units"
        row[stat] = min(1.0, max(0.0, (0.02 * depth if plain_sigmoid else 0.01) + 0.01 * rng.random()))
        for key, value in row.items():
            hist.setdefault(key, []).append(float(value))
    return ("diverged" if diverged else "completed"), hist


def final_metrics(status: str, hist: dict[str, list[float]], rng: np.random.Generator) -> dict[str, float]:
    last = {key: values[-1] for key, values in hist.items()}
    out = dict(last)
    if status == "completed":
        out["test_loss"] = last["val_loss"] + 0.01 * rng.normal()
        out["test_accuracy"] = math.exp(-out["test_loss"])
        out["best_val_loss"] = min(hist["val_loss"])
        out["best_val_accuracy"] = max(hist["val_accuracy"])
        out["gap_loss"] = last["val_loss"] - last["loss"]
        out["gap_accuracy"] = last["accuracy"] - last["val_accuracy"]
    out["epochs_trained"] = float(len(hist["loss"]))
    out["n_params"] = 1000.0
    out["train_seconds"] = 0.5
    return {key: v for key, v in out.items() if math.isfinite(v)} | {
        key: v for key, v in last.items() if not math.isfinite(v)}


# ------------------------------------------------------------------------------------------------
# writing runs


def _sample_tune(tune: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    out = {}
    for key, param in tune.items():
        if "choices" in param:
            out[key] = param["choices"][int(rng.integers(len(param["choices"])))]
        elif param.get("log"):
            out[key] = float(math.exp(rng.uniform(math.log(param["low"]), math.log(param["high"]))))
        elif isinstance(param["low"], int) and isinstance(param["high"], int):
            out[key] = int(rng.integers(param["low"], param["high"] + 1))
        else:
            out[key] = float(rng.uniform(param["low"], param["high"]))
    return out


def fake_sweep(tracker: Any, spec: Any, *, trials: int, seeds: int, epochs: int = 5,
               profile: str | None = None, seed: int = 0,
               outcome: Callable[[dict[str, Any], np.random.Generator, int],
                                 tuple[str, dict[str, list[float]]]] = synthetic_run,
               log_parent_spec: bool = True) -> str:
    """Write one synthetic sweep of ``spec`` (grid x (trials tune runs + seeds confirm runs)); returns the
    parent run id. Tune ranges and grid come from the spec."""
    from mlflow.entities import Metric, Param, RunTag

    rng = np.random.default_rng(seed)
    sweep_id = f"{spec.name}@{profile}" if profile else spec.name
    parent = tracker.start_run(spec.name, run_name=f"sweep {sweep_id}", tags={
        "nnlab.phase": "sweep", "nnlab.sweep_id": sweep_id, "nnlab.sweep_hash": spec.spec_hash(),
        "nnlab.status": "running"})
    if log_parent_spec:
        tracker.log_text(parent, spec.to_yaml(), "spec.yaml")
    tune = {key: param.model_dump() for key, param in spec.sweep.tune.items()}
    base = spec.flat_params()
    objective = spec.sweep.objective
    maximize = spec.sweep.resolved_direction == "maximize"
    client = tracker.client
    exp_id = tracker.experiment_id(spec.name)
    from nnlab.spec import expand

    slot = 0
    for grid_cell in expand(dict(spec.sweep.grid)):
        cell, cid = grid_cell.values, grid_cell.id
        tuned: list[tuple[float, dict[str, Any]]] = []
        plan = [("tune", i, None) for i in range(trials)] + [("confirm", i, i) for i in range(seeds)]
        for phase, index, seed_index in plan:
            if phase == "tune":
                values = {**cell, **_sample_tune(tune, rng)}
            else:
                best = (max if maximize else min)(tuned, key=lambda t: t[0])[1] if tuned else {}
                values = {**cell, **best, "train.seed": 1000 + index}
            status, hist = outcome(values, rng, epochs)
            finals = final_metrics(status, hist, rng)
            if phase == "tune" and status == "completed" and objective in finals:
                tuned.append((finals[objective], {k: v for k, v in values.items() if k in tune}))
            tags = {"nnlab.phase": phase, "nnlab.cell": cid, "nnlab.sweep_id": sweep_id,
                    "nnlab.slot": f"{cid}/{phase}/{index}", "nnlab.trial": str(index), "nnlab.status": status,
                    "mlflow.parentRunId": parent}
            if seed_index is not None:
                tags["nnlab.seed_index"] = str(seed_index)
            slot += 1
            run = client.create_run(exp_id, tags=tags, run_name=f"{cid} {phase} {index}")
            rid = run.info.run_id
            params = [Param(k, "null" if v is None else str(v)) for k, v in {**base, **values}.items()]
            now = int(time.time() * 1000)
            metrics = [Metric(k, v, now, step) for k, vs in hist.items() for step, v in enumerate(vs)]
            last = len(hist["loss"]) - 1
            metrics += [Metric(k, v, now, last) for k, v in finals.items() if k not in hist]
            for i in range(0, len(params), 100):
                client.log_batch(rid, params=params[i: i + 100])
            for i in range(0, len(metrics), 1000):
                client.log_batch(rid, metrics=metrics[i: i + 1000])
            client.set_terminated(rid, "FINISHED")
    client.log_batch(parent, tags=[RunTag("nnlab.status", "completed")])
    client.set_terminated(parent, "FINISHED")
    return parent


# ------------------------------------------------------------------------------------------------
# constructed run tables (no MLflow)


def runs_table(rows: list[dict[str, Any]]) -> Any:
    """A main table like the reader's from short rows: ``{"phase": "confirm", "cell": "a", "seed_index": 0,
    "params": {"model.depth": 8}, "val_loss": 0.3}`` (status defaults to completed)."""
    from analysis._runs import _frame

    records = []
    for i, row in enumerate(rows):
        row = dict(row)
        params = row.pop("params", {})
        rec: dict[str, Any] = {"run_id": f"r{i:04d}", "run_name": None, "experiment": "t", "status": "completed",
                               "mlflow_status": "FINISHED", "phase": "confirm", "cell": None, "sweep_id": "t",
                               "slot": i, "trial": i, "seed_index": None, "parent_run_id": "p", "start_time": i,
                               "end_time": i + 1}
        rec.update(row)
        if rec["cell"] is None:
            rec["cell"] = cell_id(params)
        rec.update({f"param:{k}": v for k, v in params.items()})
        records.append(rec)
    return _frame(records)


def seeds(cell: dict[str, Any], metric: str, values: Sequence[float], phase: str = "confirm",
          status: str = "completed") -> list[dict[str, Any]]:
    """One row per value: the confirm runs of one cell."""
    return [{"phase": phase, "status": status, "seed_index": i, "params": dict(cell), metric: v}
            for i, v in enumerate(values)]
