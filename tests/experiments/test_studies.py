"""Every study validates, sweeps end to end in its 'ci' profile and reports; depth's sweep shows vanishing
first-layer gradients in its plain 24-layer sigmoid net."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from nnlab.spec import Spec

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
EXPECTED = {"activations", "width", "depth", "learning_rate", "overfitting", "label_noise", "augmentation",
            "transfer", "architectures", "optimizers", "extrapolation", "depth_matched", "double_descent"}
# what a ci profile may cost: the suite sweeps every study's ci profile
CI_MAX_CELLS, CI_MAX_EPOCHS = 4, 3


def test_the_library_has_every_study():
    assert EXPECTED <= set(STUDIES)


def _claims_and_gates(spec: Spec) -> list:
    out = []
    for claim in spec.expect:
        out.append(claim)
        out += [r for r in claim.requires if not isinstance(r, str)]
    return out


@pytest.mark.parametrize("study", STUDIES)
def test_full_run_is_judged_on_held_out_data_with_repeats(study):
    """The default (full) profile: claims fixed in the spec, none judged on the split a tuned sweep selected
    on (val_*), and at least 3 repeats per cell, each drawing its own data as well as its initialization."""
    spec = Spec.from_yaml(ROOT / "experiments" / f"{study}.yaml")
    assert spec.sweep.seeds >= 3, "a claim needs repeats to be decidable"
    assert "data.seed" in spec.sweep.seed_keys, "repeats vary the data, not only the initialization"
    for claim in _claims_and_gates(spec):
        assert not claim.metric.startswith("val_"), f"{claim.metric}: judge on test_* or training metrics"


@pytest.mark.parametrize("study", STUDIES)
def test_ci_profile_stays_small(study):
    from nnlab.spec import expand

    spec = Spec.from_yaml(ROOT / "experiments" / f"{study}.yaml", profile="ci")
    cells = expand(spec.sweep.grid)
    assert len(cells) <= CI_MAX_CELLS and spec.sweep.seeds == 1 and spec.sweep.trials <= 1
    for cell in cells:
        assert spec.with_values(cell.values).train.epochs <= CI_MAX_EPOCHS, cell.id


@pytest.mark.parametrize("study", STUDIES)
def test_study_validates_with_claims_and_profiles(study):
    spec = Spec.from_yaml(ROOT / "experiments" / f"{study}.yaml")
    assert spec.description.strip() and spec.expect, "a study states its claim and how to check it"
    assert {"quick", "ci"} <= set(spec.profiles)
    for profile in ("quick", "ci"):
        Spec.from_yaml(ROOT / "experiments" / f"{study}.yaml", profile=profile)


def _nnlab_here(args: list[str], store: Path) -> int:
    """An ``nnlab`` command in this process (the CLI process itself is tested in tests/cli and by the
    tutorial): the suite sweeps and reports thirteen studies, and a process of its own for each paid its
    imports every time; here they are paid once per test process, and so are the sweep workers' (forked from
    one forkserver that imported TensorFlow once)."""
    from nnlab.cli import COMMANDS, build_parser

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NNLAB_STORE", str(store))
        mp.setenv("NNLAB_EXPERIMENTS", str(ROOT / "experiments"))
        mp.chdir(store.parent)
        parsed = build_parser().parse_args(args)  # registers the commands
        return COMMANDS[parsed.command](parsed)


@pytest.mark.parametrize("study", STUDIES)
def test_study_sweeps_and_reports_in_ci_profile(study, tmp_path):
    store = tmp_path / "store"
    assert _nnlab_here(["sweep", study, "--profile", "ci", "--workers", "1", "--progress", "lines"], store) == 0
    spec = Spec.from_yaml(ROOT / "experiments" / f"{study}.yaml", profile="ci")
    from nnlab.spec import expand

    expected_runs = len(expand(spec.sweep.grid)) * (spec.sweep.trials + spec.sweep.seeds)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    exp = client.get_experiment_by_name(spec.name)
    children = [r for r in client.search_runs([exp.experiment_id], max_results=1000)
                if r.data.tags.get("nnlab.phase") in ("tune", "confirm")]
    assert len(children) == expected_runs
    assert _nnlab_here(["report", study, "--profile", "ci", "--out", str(tmp_path / "report")], store) == 0
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000
    assert (tmp_path / "report" / "cells.csv").exists()
    if study == "depth":  # the same sweep shows the claim's mechanism (one sweep fewer in the suite)
        _depth_shows_vanishing_first_layer_gradients(client, exp.experiment_id)


def _depth_shows_vanishing_first_layer_gradients(client: MlflowClient, experiment_id: str) -> None:
    first_layer = {}
    for run in client.search_runs([experiment_id], "tags.`nnlab.phase` = 'confirm'"):
        first_layer[run.data.tags["nnlab.cell"]] = run.data.metrics["grad_norm/hidden_01"]
    plain = first_layer["model.depth=24,model.activation=sigmoid,variant=plain"]
    rescued = first_layer["model.depth=24,model.activation=sigmoid,variant=residual_bn"]
    shallow = first_layer["model.depth=2,model.activation=sigmoid,variant=plain"]
    assert plain < 1e-6, plain
    assert rescued > 1e-3 and shallow > 1e-3, (rescued, shallow)
