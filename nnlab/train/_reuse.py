"""A compiled model kept between the runs of one sweep cell, so that its functions are traced once.

A small model's first epoch is mostly tracing: building the train, test and predict graphs costs
more than the arithmetic of several epochs. The runs of one cell differ only in seeds and, in the
tune phase, in tuned values; when those leave the graph as it is, the next run can take the model
the previous one compiled and traced:

- its weights, batch-norm statistics and dropout and augmentation seed states are set to those of a
  model freshly built from the run's own seed (built, never compiled or traced: a fraction of the
  cost), so it starts where a run of its own would start;
- the optimizer's variables go back to the values they had right after compiling (slots at zero,
  the step counter at 0, a loss scale at its start) and the learning rate, a variable, takes the
  run's value;
- metrics are reset by ``fit`` and ``evaluate`` as in every run.

What decides the graph (:meth:`ModelCache.key`): the whole spec except ``train.seed`` and
``data.seed``, and except ``train.learning_rate`` under a constant rate (a schedule bakes its
starting rate into the traced step), plus the facts of the loaded data (``DataInfo``: shapes, and the
statistics an augmentation layer standardizes with) and the training split's size. Any other
difference builds and compiles anew. Runs with pre-training always do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nnlab.data import Dataset
from nnlab.spec import Spec


@dataclass
class _Kept:
    key: str
    model: Any
    optimizer_start: list[Any]


class ModelCache:
    """One compiled model for a process that runs many runs (a sweep worker). ``builds`` counts the models
    compiled and kept, ``reuses`` the runs that started from a kept one. ``probes`` holds what callbacks
    traced for the kept model (the diagnostics probe), emptied when it goes."""

    def __init__(self) -> None:
        self._kept: _Kept | None = None
        self.probes: dict[str, Any] = {}
        self.builds = 0
        self.reuses = 0

    @staticmethod
    def key(spec: Spec, data: Dataset) -> str | None:
        """What a kept model must have been compiled for to serve this run; None when it cannot serve."""
        if spec.train.pretrain is not None:
            return None
        train = spec.train.model_dump(mode="json", exclude={"seed"})
        if spec.train.schedule == "none":
            train.pop("learning_rate", None)
        parts = {"model": spec.model.model_dump(mode="json"), "train": train,
                 "data": spec.data.model_dump(mode="json", exclude={"seed"}),
                 "info": repr(data.info), "n_train": len(data.x_train)}
        return json.dumps(parts, sort_keys=True, default=str)

    def release_unless(self, key: str | None) -> None:
        """Drop the kept model (and Keras's global state) unless it serves ``key``: before building another."""
        if self._kept is not None and self._kept.key != key:
            self.release()

    def take(self, key: str | None, fresh: Any) -> Any | None:
        """The kept model, its every variable set to ``fresh``'s (same architecture, the run's seed), or
        None when nothing kept serves ``key``."""
        kept = self._kept
        if key is None or kept is None or kept.key != key:
            return None
        target, source = kept.model.variables, fresh.variables
        if len(target) != len(source) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(target, source, strict=True)):
            self.release()
            return None
        for a, b in zip(target, source, strict=True):
            a.assign(b.value)
        self.reuses += 1
        return kept.model

    def keep(self, key: str | None, model: Any) -> None:
        """Keep ``model``, compiled and its optimizer built, for later runs of ``key``."""
        if key is None:
            return
        self._kept = _Kept(key, model, [v.numpy() for v in model.optimizer.variables])
        self.builds += 1

    def restart(self, model: Any, spec: Spec) -> None:
        """The kept model's optimizer as it was right after compiling, at the run's constant learning rate
        (under a schedule the rate is part of the key: the same)."""
        assert self._kept is not None and self._kept.model is model
        for var, value in zip(model.optimizer.variables, self._kept.optimizer_start, strict=True):
            var.assign(value)
        if spec.train.schedule == "none":
            model.optimizer.learning_rate = spec.train.learning_rate

    def release(self) -> None:
        """Forget the kept model and clear Keras's global state."""
        from nnlab.train._env import keras

        self._kept = None
        self.probes = {}
        keras().backend.clear_session()  # it runs a full garbage collection itself
