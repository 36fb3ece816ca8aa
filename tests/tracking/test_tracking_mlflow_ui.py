"""What the MLflow UI and MLflow's own queries show of nnlab's runs: the experiment's kind and description,
MLflow's standard run tags, the run's datasets (name, digest, split), and params that apply to the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.utils import mlflow_tags

from nnlab.data import load_dataset
from nnlab.spec import Spec
from nnlab.tracking import _tags, resolve_store
from nnlab.tracking._inputs import split_inputs
from nnlab.tracking._mlflow import Tracker
from nnlab.train import execute, prepare

pytestmark = pytest.mark.xdist_group("train")

SPEC = """
name: ui-demo
description: A one-epoch net on the digits, to see what the MLflow UI shows.
data: {dataset: digits, train_size: 300}
model: {family: mlp, depth: 1, width: 8}
train: {epochs: 1, diagnostics: false}
"""


def test_tag_names_are_mlflows_own():
    assert _tags.NOTE == mlflow_tags.MLFLOW_RUN_NOTE
    assert _tags.SOURCE_NAME == mlflow_tags.MLFLOW_SOURCE_NAME
    assert _tags.SOURCE_TYPE == mlflow_tags.MLFLOW_SOURCE_TYPE
    assert _tags.GIT_COMMIT == mlflow_tags.MLFLOW_GIT_COMMIT
    assert _tags.USER == mlflow_tags.MLFLOW_USER
    assert _tags.PARENT_RUN_ID == mlflow_tags.MLFLOW_PARENT_RUN_ID
    assert _tags.DATASET_CONTEXT == mlflow_tags.MLFLOW_DATASET_CONTEXT


def test_experiment_kind_is_the_one_mlflows_ui_reads():
    """MLflow's Python code has no constant for it: the UI bundle it ships is where the tag and the value live."""
    bundle = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    if not bundle.is_dir():
        pytest.skip("this MLflow ships no UI")
    text = "".join(p.read_text(errors="ignore") for p in bundle.glob("*.js") if p.stat().st_size < 20_000_000)
    assert f'"{_tags.EXPERIMENT_KIND}"' in text
    assert f'CUSTOM_MODEL_DEVELOPMENT="{_tags.CUSTOM_MODEL_DEVELOPMENT}"' in text


def test_a_run_as_the_mlflow_ui_shows_it(write_spec):
    spec = Spec.from_yaml(write_spec(SPEC))
    tracker = Tracker(resolve_store())
    result = execute(prepare(spec), tracker, figures=False)
    client = MlflowClient(resolve_store().tracking_uri)
    run = client.get_run(result.run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags[_tags.EXPERIMENT_KIND] == _tags.CUSTOM_MODEL_DEVELOPMENT
    assert exp.tags[_tags.NOTE] == spec.description

    tags = run.data.tags
    assert tags[_tags.SOURCE_NAME] == spec.source
    assert tags[_tags.SOURCE_TYPE] == "LOCAL"
    assert tags[_tags.USER]
    assert _tags.GIT_COMMIT in tags
    assert not {"nnlab.source", "nnlab.git_commit"} & set(tags)  # MLflow's names only

    # an mlp on the digits: only what applies to it, nothing null, the training examples counted
    params = run.data.params
    assert params["model.family"] == "mlp" and params["data.dataset"] == "digits"
    assert params["data.n_train"] == "300" and params["data.train_size"] == "300"
    assert not {"model.cell", "model.heads", "model.kernel_size", "model.pool", "model.downsample",
                "model.ffn_multiplier"} & set(params)
    assert not {"data.function", "data.path", "data.target", "data.n_samples", "data.noise", "data.classes",
                "data.shift", "data.augment", "train.momentum", "train.early_stopping", "train.restore_best",
                "train.clipnorm", "train.pretrain"} & set(params)
    assert "null" not in params.values() and "None" not in params.values()

    # its data: one input per split, with the split as context, found by MLflow's own search
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "validation", "test"}
    assert {d.name for d in inputs.values()} == {"digits"}
    assert all(len(d.digest) == 16 for d in inputs.values())
    assert '"num_rows": 300' in inputs["train"].profile and "tensorspec" in inputs["train"].schema
    found = client.search_runs([exp.experiment_id], filter_string=(
        f"dataset.name = 'digits' AND dataset.digest = '{inputs['train'].digest}' AND dataset.context = 'train'"))
    assert [r.info.run_id for r in found] == [result.run_id]


def test_digests_follow_the_data(write_spec):
    spec = Spec.from_yaml(write_spec(SPEC))

    def digests(**values):
        data = load_dataset(spec.with_values(values).data)
        splits = {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
                  "test": (data.x_test, data.y_test)}
        return {i["context"]: i["digest"] for i in split_inputs(data.name, splits)}

    same = digests()
    assert digests() == same
    fewer = digests(**{"data.train_size": 200})
    assert fewer["train"] != same["train"] and fewer["validation"] == same["validation"]
    assert fewer["test"] == same["test"]  # a subset changes the training set only
    other = digests(**{"data.seed": 1})
    assert all(other[k] != same[k] for k in same)
    noisy = digests(**{"data.label_noise": 0.3})
    assert noisy["train"] != same["train"] and noisy["test"] == same["test"]


def test_an_existing_experiment_is_tagged_when_written_to():
    store = resolve_store()
    tracker = Tracker(store)
    client = tracker.client
    old = client.create_experiment("from-before")  # as nnlab made them before: no kind
    assert _tags.EXPERIMENT_KIND not in client.get_experiment(old).tags
    tracker.experiment_id("from-before")
    assert client.get_experiment(old).tags[_tags.EXPERIMENT_KIND] == _tags.CUSTOM_MODEL_DEVELOPMENT
    mine = client.create_experiment("old-nnlab-runs")
    client.create_run(mine, tags={"nnlab.pid": "1"})
    client.create_experiment("someone-elses")
    assert Tracker(store).tag_experiments() == ["old-nnlab-runs"]  # what `nnlab ui` does first
    assert _tags.EXPERIMENT_KIND not in client.get_experiment_by_name("someone-elses").tags


def test_a_run_note_is_kept_unless_replaced():
    tracker = Tracker(resolve_store())
    run_id = tracker.start_run("notes", run_name="parent", tags={})
    tracker.set_note(run_id, "the study's description", replace=False)
    tracker.set_note(run_id, "something else", replace=False)
    assert tracker.client.get_run(run_id).data.tags[_tags.NOTE] == "the study's description"
    tracker.set_note(run_id, "| claim | verdict |")
    assert tracker.client.get_run(run_id).data.tags[_tags.NOTE] == "| claim | verdict |"


def _log_same_data_as_the_others(root: str, barrier: Any, inputs: list[dict[str, Any]], out: Any) -> None:
    try:
        tracker = Tracker(resolve_store(store=root))
        run_id = tracker.start_run("racing", run_name="worker", tags={})
        barrier.wait(timeout=60)
        tracker.log_inputs(run_id, inputs)
        tracker.end_run(run_id, "FINISHED")
        out.put(("ok", run_id))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def test_workers_logging_the_same_data_at_once_all_record_it(tmp_path):
    """MLflow looks a dataset up, then inserts it: sweep workers starting together on one dataset race for
    its row. Every one of them must record its inputs (a lost race once crashed a worker)."""
    import multiprocessing

    data = load_dataset(Spec.from_dict(__import__("yaml").safe_load(SPEC)).data)
    inputs = split_inputs(data.name, {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)})
    root = str(tmp_path / "race-store")  # a store of its own: no MLflow engine cached by this process
    Tracker(resolve_store(store=root)).experiment_id("racing")
    # as sweep workers start: from the forkserver, a clean process (forking this one, where earlier tests may
    # have started TensorFlow's runtime, leaves children that crash when they collect its objects)
    ctx = multiprocessing.get_context("forkserver")
    n = 6
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_log_same_data_as_the_others, args=(root, barrier, inputs, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [r for r in results if r[0] != "ok"] == []
    client = MlflowClient(resolve_store(store=root).tracking_uri)
    for _, run_id in results:
        contexts = sorted(i.tags[0].value for i in client.get_run(run_id).inputs.dataset_inputs)
        assert contexts == ["test", "train"]
