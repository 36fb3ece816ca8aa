"""Samplers and pruners: every registered name builds an Optuna object that works; storage URLs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna
import pytest

from nnlab.errors import FatalError, SpecError
from nnlab.spec import Spec
from nnlab.sweep import PRUNERS, SAMPLERS
from nnlab.sweep._pruners import build_pruner
from nnlab.sweep._samplers import build_sampler, check_sampler, unguided
from nnlab.sweep._space import build_space
from nnlab.sweep._storage import open_storage, redact, resolve_target
from nnlab.tracking import resolve_store

optuna.logging.set_verbosity(optuna.logging.WARNING)

TUNE = {"train.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
        "model.width": {"low": 4, "high": 16, "step": 4},
        "train.optimizer": {"choices": ["adam", "sgd"]}}


def _dims(**tune):
    spec = Spec.from_dict({"name": "r", "data": {"dataset": "moons"},
                           "sweep": {"tune": tune or TUNE, "trials": 4}})
    return build_space(spec)


def test_space_maps_to_optuna_distributions() -> None:
    lr, width, opt = _dims()
    assert isinstance(lr.distribution(), optuna.distributions.FloatDistribution) and lr.distribution().log
    assert isinstance(width.distribution(), optuna.distributions.IntDistribution) and width.distribution().step == 4
    assert opt.distribution().choices == ("adam", "sgd")
    # an integer bound on a float key still tunes a float
    (rate,) = _dims(**{"train.learning_rate": {"low": 1, "high": 3}})
    assert rate.kind == "float"


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_suggests_within_the_space(name: str) -> None:
    dims = _dims(**{"model.width": {"low": 4, "high": 16, "step": 4}, "train.optimizer": {"choices": ["adam", "sgd"]}})
    needs = SAMPLERS.meta(name).get("needs")
    if needs and importlib.util.find_spec(needs) is None:
        with pytest.raises(SpecError, match=f"needs the Python package '{needs}'.*pip install {needs}"):
            check_sampler(name, dims)
        return
    check_sampler(name, dims)
    study = optuna.create_study()
    for number in range(5):
        study.sampler = build_sampler(name, dims, 5, cell_seed=3, trial_number=number)
        trial = study.ask()
        values = {d.key: d.suggest(trial) for d in dims}
        assert values["model.width"] in (4, 8, 12, 16) and values["train.optimizer"] in ("adam", "sgd")
        study.tell(trial, float(values["model.width"]))


def test_per_trial_seeds_make_suggestions_reproducible() -> None:
    dims = _dims()
    picks = []
    for _ in range(2):
        study = optuna.create_study()
        study.sampler = build_sampler("tpe", dims, 10, cell_seed=11, trial_number=0)
        picks.append({d.key: d.suggest(study.ask()) for d in dims})
    assert picks[0] == picks[1]


def test_unguided_trials_are_drawn_without_results() -> None:
    """What a worker may take at once: TPE's start-up trials (3 of 10) get the same values whatever the
    results before them; the first trial after them depends on the results. Random, qmc and grid never do."""
    dims = _dims(**{"train.learning_rate": TUNE["train.learning_rate"]})
    trials = 10
    n = unguided("tpe", trials)
    assert n == 3 and unguided("random", trials) == unguided("qmc", trials) == unguided("grid", trials) == trials

    def draw(number: int, values: list[float]) -> list[object]:
        study = optuna.create_study()
        for i, value in enumerate(values):
            study.sampler = build_sampler("tpe", dims, trials, cell_seed=1, trial_number=i)
            trial = study.ask()
            for d in dims:
                d.suggest(trial)
            study.tell(trial, value)
        study.sampler = build_sampler("tpe", dims, trials, cell_seed=1, trial_number=number)
        trial = study.ask()
        return [d.suggest(trial) for d in dims]

    assert draw(n - 1, [0.0, 1.0]) == draw(n - 1, [1.0, 0.0])
    assert draw(n, [0.0, 1.0, 2.0]) != draw(n, [2.0, 1.0, 0.0])


@pytest.mark.parametrize("name", PRUNERS.names())
def test_every_pruner_builds_and_answers(name: str) -> None:
    pruner = build_pruner(name, trials=10, epochs=9)
    study = optuna.create_study(pruner=pruner)
    for value in (1.0, 0.5, 2.0):
        trial = study.ask()
        for step in range(1, 4):
            trial.report(value * step, step)
        assert trial.should_prune() in (True, False)  # Optuna may answer with a numpy bool
        study.tell(trial, value)


def test_pruner_warmup_scales_with_the_sweep() -> None:
    median = build_pruner("median", trials=4, epochs=15)
    assert isinstance(median, optuna.pruners.PatientPruner) and median._patience == 2
    inner = median._wrapped_pruner
    assert (inner._n_startup_trials, inner._n_warmup_steps) == (2, 2)
    assert build_pruner("median", trials=40, epochs=70)._wrapped_pruner._n_startup_trials == 2
    assert build_pruner("median", trials=3, epochs=70)._wrapped_pruner._n_startup_trials == 1
    assert build_pruner("median", trials=40, epochs=70)._wrapped_pruner._n_warmup_steps == 10
    assert build_pruner("median", trials=40, epochs=70)._patience == 10
    assert build_pruner("median", trials=4, epochs=3)._patience == 1  # never 0: a flat epoch is not progress
    assert build_pruner("percentile", trials=1, epochs=3)._n_warmup_steps == 1  # never from epoch 0


def _completed(study: optuna.Study, curves: list[list[float]]) -> None:
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve, start=1):
            trial.report(value, step)
        study.tell(trial, curve[-1])


def _answers(study: optuna.Study, curve: list[float]) -> list[bool]:
    """Whether the pruner would stop a trial with this val_loss curve after each epoch."""
    trial = study.ask()
    answers = []
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
        answers.append(bool(trial.should_prune()))
    study.tell(trial, curve[-1])
    return answers


def test_median_pruner_lets_a_trial_that_still_improves_run_on() -> None:
    """Behind the median at every epoch but improving every epoch (a low learning rate early on): never stopped,
    where Optuna's median alone stops it at its warm-up's end; behind and without a new best for 3 epochs
    (patience 2 of 15 epochs): stopped."""
    references = [[1.0, 0.5, 0.3, 0.2, 0.15, 0.12], [1.1, 0.6, 0.35, 0.25, 0.2, 0.18]]
    slow = [2.0, 1.6, 1.3, 1.0, 0.8, 0.6]
    study = optuna.create_study(pruner=build_pruner("median", trials=20, epochs=15))
    _completed(study, references)
    assert _answers(study, slow) == [False] * len(slow)
    plain = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2))
    _completed(plain, references)
    assert _answers(plain, slow).index(True) == 1  # stopped at epoch 2: what the patience changes
    stalled = [2.0, 1.6, 1.7, 1.8, 1.9, 2.0]  # best at epoch 2, then none in epochs 3-5
    assert _answers(study, stalled).index(True) == 4  # patience 2: stopped after 3 epochs without a new best


def test_median_pruner_never_stops_a_trial_ahead_of_the_median() -> None:
    study = optuna.create_study(pruner=build_pruner("median", trials=20, epochs=15))
    _completed(study, [[1.0, 0.9, 0.8, 0.7, 0.6], [1.2, 1.1, 1.0, 0.9, 0.8]])
    assert _answers(study, [0.5, 0.6, 0.7, 0.8, 0.9]) == [False] * 5  # stalled but ahead


def test_storage_targets(tmp_path: Path) -> None:
    store = resolve_store(None, str(tmp_path / "store"))
    embedded = resolve_target(store, None)
    assert embedded.kind == "journal" and embedded.location.endswith("store/optuna.journal") and not embedded.shared
    pg = resolve_target(store, "postgresql://u:secret@db.example:5432/sweeps")
    assert pg.kind == "rdb" and pg.shared and pg.heartbeat and "secret" not in pg.shown
    assert pg.location.startswith(("postgresql+psycopg2://", "postgresql+psycopg://"))
    assert resolve_target(store, str(tmp_path / "x.journal")).kind == "journal"
    with pytest.raises(SpecError, match="--storage: must be a database URL"):
        resolve_target(store, "redis://localhost")
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_sqlite_storage_gets_a_busy_timeout(tmp_path: Path) -> None:
    target = resolve_target(resolve_store(None, str(tmp_path)), f"sqlite:///{tmp_path}/optuna.db")
    storage = open_storage(target).storage
    assert storage.engine_kwargs["connect_args"]["timeout"] >= 30
    assert storage.heartbeat_interval is not None


def test_unreachable_storage_fails_with_url_and_reason(tmp_path: Path) -> None:
    target = resolve_target(resolve_store(None, str(tmp_path)), "postgresql://nnlab:pw@127.0.0.1:1/none")
    with pytest.raises(FatalError, match=r"Optuna storage postgresql\+\w+://nnlab:\*\*\*@127.0.0.1:1/none is not "
                                         r"reachable: .*(refused|connect)"):
        open_storage(target)


def test_grid_sampler_walks_the_grid_through_queued_slots(tmp_path: Path) -> None:
    from nnlab.sweep._slots import enqueue_slots, take_slot

    dims = _dims(**{"train.optimizer": {"choices": ["adam", "sgd", "rmsprop"]}})
    study = optuna.create_study()
    enqueue_slots(study, range(3))
    seen = []
    for _ in range(3):
        study.sampler = build_sampler("grid", dims, 3, cell_seed=5, trial_number=0)
        trial = take_slot(study, None)
        seen.append(dims[0].suggest(trial))
        study.tell(trial, 1.0)
    assert sorted(seen) == ["adam", "rmsprop", "sgd"]
    assert len(study.trials) == 3


def test_workers_auto_and_gpu_pinning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    from nnlab.sweep._coordinator import WorkerPool, resolve_workers, threads_per_worker, visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    gpus = visible_gpus()
    assert gpus == ["2", "5"]
    assert resolve_workers("auto", 1, gpus) == 2  # one per visible GPU
    assert resolve_workers(None, "auto", []) == max(1, min(os.cpu_count() or 1, 4))
    assert resolve_workers(3, "auto", gpus) == 3
    pool = WorkerPool(size=3, gpus=gpus, log_dir=tmp_path, log_name="x", env={"PATH": "/bin"})
    assert [pool.worker_env(i)["CUDA_VISIBLE_DEVICES"] for i in range(3)] == ["2", "5", "2"]
    assert pool.worker_env(0)["NNLAB_THREADS"] == str(threads_per_worker(3))
    assert "NNLAB_GPU_MEMORY_MB" not in pool.worker_env(0)  # memory unknown here: each grows its own
    # two workers on GPU 2, one on GPU 5: those sharing a GPU split 90% of its memory (nvidia-smi's figure)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\nprintf '2, GPU-a2, 81559\\n5, GPU-a5, 40960\\n'\n")
    (fake / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    pool = WorkerPool(size=3, gpus=gpus, log_dir=tmp_path, log_name="x", env={"PATH": "/bin"})
    assert [pool.worker_env(i).get("NNLAB_GPU_MEMORY_MB") for i in range(3)] == ["36701", None, "36701"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []
    # unset: nvidia-smi's list by UUID (CUDA's order may differ from its indices); a MIG-split GPU by its instances
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    (fake / "nvidia-smi").write_text("#!/bin/sh\ncat <<'EOF'\n"
                                     "GPU 0: NVIDIA H200 (UUID: GPU-0aaa)\n"
                                     "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-1bbb)\n"
                                     "  MIG 3g.40gb     Device  0: (UUID: MIG-1b00)\n"
                                     "  MIG 3g.40gb     Device  1: (UUID: MIG-1b01)\n"
                                     "GPU 2: NVIDIA H200 (UUID: GPU-2ccc)\nEOF\n")
    assert visible_gpus() == ["GPU-0aaa", "MIG-1b00", "MIG-1b01", "GPU-2ccc"]


def test_values_read_back_from_mlflow_params() -> None:
    lr, width, opt = _dims()
    assert lr.from_param("0.0123") == 0.0123 and width.from_param("8") == 8 and opt.from_param("sgd") == "sgd"
    with pytest.raises(ValueError):
        opt.from_param("lbfgs")
