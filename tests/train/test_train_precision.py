"""train.precision (Keras dtype policies) and train.jit_compile (XLA) as a run uses them."""

from __future__ import annotations

import math

import pytest

from nnlab.spec import Spec, SpecError
from nnlab.train import execute, prepare
from nnlab.train._env import keras

pytestmark = pytest.mark.xdist_group("train")

BASE = """
name: precision
data: {dataset: digits_flat, train_size: 300}
model: {family: mlp, depth: 2, width: 16, normalization: batch}
train: {epochs: 3, diagnostics: true}
"""


def _run(write_spec, text, *overrides):
    spec = Spec.from_yaml(write_spec(text), list(overrides))
    prepared = prepare(spec)
    return prepared.model, execute(prepared, None, figures=False)


@pytest.mark.parametrize(("policy", "compute"), [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_trains_hidden_layers_low_and_the_head_in_float32(write_spec, policy, compute):
    model, result = _run(write_spec, BASE, f"train.precision={policy}")
    assert result.status == "completed" and math.isfinite(result.metrics["val_loss"])
    assert result.metrics["val_loss"] < result.history["val_loss"][0] or result.metrics["val_accuracy"] > 0.3
    hidden = [layer for layer in model.layers if layer.weights and layer.name != "head"]
    assert hidden and all(layer.compute_dtype == compute for layer in hidden)
    assert all(w.dtype == "float32" for layer in hidden for w in layer.weights)  # float32 weights kept
    head = model.get_layer("head")
    assert head.compute_dtype == "float32" and model.outputs[0].dtype == "float32"
    scaled = type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert scaled == (policy == "mixed_float16")  # loss scaling only where float16 can underflow
    assert keras().config.dtype_policy().name == "float32"  # the global policy put back for later models


def test_precision_applies_to_images_with_augmentation_and_convolutions(write_spec):
    text = """
    name: cnn
    data: {dataset: digits, train_size: 200, augment: [flip, noise]}
    model: {family: cnn, depth: 2, width: 8}
    train: {epochs: 1, precision: mixed_bfloat16}
    """
    model, result = _run(write_spec, text)
    assert result.status == "completed" and math.isfinite(result.metrics["val_loss"])
    convs = [layer for layer in model.layers if "conv" in type(layer).__name__.lower()]
    assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)


def test_jit_compile_auto_is_off_on_the_cpu_and_can_be_asked_for(write_spec):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("auto turns XLA on where a GPU is visible")
    model, result = _run(write_spec, BASE, "train.epochs=1")
    assert model.jit_compile is False and result.status == "completed"
    model, result = _run(write_spec, BASE, "train.epochs=1", "train.jit_compile=true")
    assert model.jit_compile is True and result.status == "completed"
    # the resolved value is recorded with the run, auto's too
    from mlflow import MlflowClient

    from nnlab.tracking import resolve_store
    from nnlab.tracking._mlflow import Tracker

    store = resolve_store()
    for setting, resolved in (("auto", "false"), ("true", "true")):
        spec = Spec.from_yaml(write_spec(BASE), ["train.epochs=1", f"train.jit_compile={setting}"])
        run = execute(prepare(spec), Tracker(store), figures=False).run_id
        tags = MlflowClient(store.tracking_uri).get_run(run).data.tags
        assert tags["nnlab.jit_compile"] == resolved and tags["nnlab.device"].startswith("cpu:")
        assert "nnlab.gpu_name" not in tags
    assert math.isfinite(result.metrics["val_loss"])


def test_the_keys_are_params_and_change_the_hash_only_when_used(write_spec):
    spec = Spec.from_yaml(write_spec(BASE), [])
    params = spec.flat_params()
    assert params["train.precision"] == "float32" and params["train.jit_compile"] == "auto"
    # the hash this spec had before the two keys (and sweep.seed_keys) existed: a sweep started then still
    # resumes when its spec keeps the old confirm seeds (and the data and model keys added since at the
    # values that reproduce their old behaviour)
    before = """
    name: demo
    data: {dataset: digits_flat, train_size: 0.5, standardize: true, standardize_fit: train,
           augment_space: standardized}
    model: {family: mlp, depth: 2, width: 16, downsample: alternate}
    train: {epochs: 2}
    sweep: {seed_keys: [train.seed]}
    """
    assert Spec.from_yaml(write_spec(before, "before.yaml"), []).spec_hash() == "a0e5968bb5e87ec3"
    explicit = Spec.from_yaml(write_spec(BASE), ["train.precision=float32", "train.jit_compile=auto"])
    assert explicit.spec_hash() == spec.spec_hash()
    hashes = {Spec.from_yaml(write_spec(BASE), [o]).spec_hash()
              for o in ("train.precision=mixed_float16", "train.jit_compile=true", "train.jit_compile=false")}
    assert len(hashes) == 3 and spec.spec_hash() not in hashes


def test_an_unknown_precision_is_a_located_error(write_spec):
    path = write_spec(BASE.replace("diagnostics: true", "diagnostics: true, precision: half"))
    with pytest.raises(SpecError) as info:
        Spec.from_yaml(path, [])
    message = str(info.value)
    assert message.startswith(f"{path}:4: ") and "train.precision" in message
    assert "mixed_float16" in message and "\n" not in message


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_gradient_diagnostics_under_mixed_precision_agree_with_float32_on_the_same_weights(write_spec, policy):
    """A deep sigmoid net's first-layer gradient (~1e-9 here) flushes to zero in a float16 backward pass;
    the diagnostics probe in float32 on the same weights, so they report what float32 reports."""
    import numpy as np
    import tensorflow as tf

    from nnlab.train._callbacks import Diagnostics, computing_in_float32

    text = """
    name: deepmixed
    data: {dataset: digits_flat, train_size: 200}
    model: {family: mlp, depth: 12, width: 16, activation: sigmoid}
    train: {epochs: 1}
    """
    found = {}
    for precision in ("float32", policy):
        prepared = prepare(Spec.from_yaml(write_spec(text), [f"train.precision={precision}"]))
        model, data = prepared.model, prepared.data
        probe = Diagnostics(data.x_train[:64], data.y_train[:64], keras().losses.SparseCategoricalCrossentropy(),
                            "sigmoid")
        probe.set_model(model)
        found[precision] = probe.compute()
        first = model.get_layer("hidden_01")
        if precision != "float32":
            assert first.compute_dtype != "float32"  # the model's own policy is put back after probing
            with tf.GradientTape() as tape:  # what a probe in the model's own precision would see
                loss = probe.loss_fn(probe.y, model(probe.x, training=False))
            raw = float(tf.norm(tf.cast(tape.gradient(loss, first.kernel.value), "float32")))
            with computing_in_float32(model):
                assert first.compute_dtype == "float32"
    reference, mixed = found["float32"], found[policy]
    first_norm = reference["grad_norm/hidden_01"]
    assert 0 < first_norm < 1e-6  # a vanishing gradient float32 can still measure
    assert set(mixed) == set(reference)
    for key, value in reference.items():
        assert mixed[key] == pytest.approx(value, rel=1e-5, abs=1e-12), key
    if policy == "mixed_float16":
        assert raw == 0.0 or not np.isclose(raw, first_norm, rtol=0.1)  # the error the float32 probe avoids


def test_gpu_tags_name_each_gpu_its_compute_capability_and_the_cuda_build() -> None:
    from nnlab.train._env import gpu_tags

    details = [{"device_name": "NVIDIA H200", "compute_capability": (9, 0)},
               {"device_name": "NVIDIA A100-SXM4-80GB", "compute_capability": (8, 0)}]
    assert gpu_tags(details, {"cuda_version": "12.5.1", "cudnn_version": "9"}) == {
        "nnlab.gpu_name": "NVIDIA H200, NVIDIA A100-SXM4-80GB", "nnlab.gpu_compute_capability": "9.0, 8.0",
        "nnlab.cuda_build": "cuda 12.5.1, cudnn 9"}
    assert gpu_tags([{}], {}) == {"nnlab.gpu_name": "unknown", "nnlab.gpu_compute_capability": "unknown"}
    assert gpu_tags([], {"cuda_version": "12.5.1"}) == {}


def test_deterministic_turns_on_op_determinism_and_is_recorded(write_spec, store_dir):
    """In a process of its own: op determinism is process-wide. With it on, every random op must be seeded
    (dropout, augmentation, shuffling), or TensorFlow raises: the run completes and says it ran so."""
    import subprocess
    import sys

    from mlflow import MlflowClient

    from nnlab.tracking import resolve_store

    path = write_spec("""
    name: determined
    data: {dataset: digits, train_size: 200, augment: [flip, noise]}
    model: {family: cnn, depth: 1, width: 4, dropout: 0.2}
    train: {epochs: 2, deterministic: true}
    """)
    done = subprocess.run([sys.executable, "-m", "nnlab.cli", "run", str(path)], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient(resolve_store().tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("determined").experiment_id])
    assert run.data.tags["nnlab.deterministic"] == "true" and run.data.tags["nnlab.status"] == "completed"
    assert run.data.params["train.deterministic"] == "True"
    assert store_dir.exists()
