"""Compiled models kept between the runs of a sweep cell, so that its functions are traced once.

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
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from nnlab.data import Dataset
from nnlab.spec import Spec


@dataclass
class _Kept:
    model: Any
    optimizer_start: list[Any] | None  # None: kept uncompiled (a cohort's template), compiled at its first fit
    probes: dict[str, Any] = field(default_factory=dict)  # what callbacks and cohorts traced for this model


CAPACITY = 3  # models a worker keeps: the cell it is in and the last two it left


class ModelCache:
    """The compiled models of the last ``capacity`` graphs a process ran (a sweep worker's), most recent
    last. A worker leaves a cell and comes back: two workers share a cell's tuning, and one that finds
    the rest of it taken starts the next cell, then returns for the first cell's confirm runs, which come
    first in cell order. With one kept model every such move built and traced again.

    ``builds`` counts the models compiled and kept, ``reuses`` the runs that started from a kept one,
    ``evictions`` the models dropped to make room. Each kept model has its own ``probes`` (what callbacks
    traced for it: the diagnostics probe), dropped with it."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = max(1, capacity)
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self.builds = 0
        self.reuses = 0
        self.evictions = 0

    @staticmethod
    def key(spec: Spec, data: Dataset, *, any_rate: bool = False) -> str | None:
        """What a kept model must have been compiled for to serve this run; None when it cannot serve.
        ``any_rate``: whatever the learning rate, also under a schedule (a cohort's engine, where each
        member has its own rate, see ``nnlab.train._cohort``)."""
        if spec.train.pretrain is not None:
            return None
        train = spec.train.model_dump(mode="json", exclude={"seed"})
        if any_rate or spec.train.schedule == "none":
            train.pop("learning_rate", None)
        parts = {"model": spec.model.model_dump(mode="json"), "train": train,
                 "data": spec.data.model_dump(mode="json", exclude={"seed"}),
                 "info": repr(data.info), "n_train": len(data.x_train)}
        return json.dumps(parts, sort_keys=True, default=str)

    def make_room(self, key: str | None) -> None:
        """Before building a model for ``key``: when no kept model serves it and the cache is full, drop the
        least recently used one, so that at most ``capacity`` models (and the one being built) are held."""
        if key in self._kept:
            return
        self._shrink_to(self.capacity - 1)
        if not self._kept:
            self.release()  # nothing left to keep: Keras's global state goes too

    def take(self, key: str | None, fresh: Any) -> Any | None:
        """The kept model for ``key``, its every variable set to ``fresh``'s (same architecture, the run's
        seed), or None when none is kept."""
        kept = self._kept.get(key) if key is not None else None
        if key is None or kept is None:
            return None
        target, source = kept.model.variables, fresh.variables
        if len(target) != len(source) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(target, source, strict=True)):
            del self._kept[key]
            return None
        for a, b in zip(target, source, strict=True):
            a.assign(b.value)
        self._kept.move_to_end(key)
        self.reuses += 1
        return kept.model

    def keep(self, key: str | None, model: Any) -> None:
        """Keep ``model`` for later runs of ``key``: compiled with its optimizer built, or (a cohort's
        template, which never fits) uncompiled, to be compiled by the first run that fits it. Keeping a
        model again (now compiled) keeps what was traced for it."""
        if key is None:
            return
        before = self._kept.get(key)
        optimizer = getattr(model, "optimizer", None)
        start = [v.numpy() for v in optimizer.variables] if optimizer is not None else None
        probes = before.probes if before is not None and before.model is model else {}
        self._kept[key] = _Kept(model, start, probes)
        self._kept.move_to_end(key)
        self._shrink_to(self.capacity)
        if before is None or before.model is not model:
            self.builds += 1

    def compiled(self, key: str | None) -> bool:
        """Whether the model kept for ``key`` is compiled (its runs restart it instead of compiling)."""
        kept = self._kept.get(key) if key is not None else None
        return kept is not None and kept.optimizer_start is not None

    def _shrink_to(self, size: int) -> None:
        """Drop the least recently used models until at most ``size`` are kept."""
        while len(self._kept) > size:
            self._kept.popitem(last=False)
            self.evictions += 1

    def probes(self, key: str | None) -> dict[str, Any] | None:
        """The traced callbacks' store of the model kept for ``key``; None when none is kept."""
        kept = self._kept.get(key) if key is not None else None
        return kept.probes if kept is not None else None

    def restart(self, model: Any, spec: Spec) -> None:
        """The kept model's optimizer as it was right after compiling, at the run's constant learning rate
        (under a schedule the rate is part of the key: the same)."""
        kept = next(k for k in self._kept.values() if k.model is model)
        assert kept.optimizer_start is not None, "restart() of a model kept uncompiled"
        for var, value in zip(model.optimizer.variables, kept.optimizer_start, strict=True):
            var.assign(value)
        if spec.train.schedule == "none":
            model.optimizer.learning_rate = spec.train.learning_rate

    def __len__(self) -> int:
        return len(self._kept)

    def release(self) -> None:
        """Forget every kept model and clear Keras's global state."""
        from nnlab.train._env import keras

        self._kept.clear()
        keras().backend.clear_session()  # it runs a full garbage collection itself
