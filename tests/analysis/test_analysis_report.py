"""The report end to end on synthetic sweeps: files, every figure in the HTML, the claims table first,
artifacts on the parent run, combined reports, profiles, and the command's exit codes.

One store with a few studies is written once for the module; each test writes its reports into its
own folder.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from analysis_testkit import fake_sweep, write_spec
from conftest import LAB, make_study

from analysis import build_report
from nnlab.cli import main
from nnlab.spec import Spec
from nnlab.tracking import resolve_store


@dataclass
class Shared:
    store: Path
    experiments: Path
    parents: dict[str, str]
    client: Any


def _body(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(LAB)
    body.update(changes)
    return body


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    from nnlab.tracking._mlflow import Tracker

    root = tmp_path_factory.mktemp("reports")
    tracker = Tracker(resolve_store(store=str(root / "store")))
    contra = _body(report=[])
    contra["expect"][1]["trend"]["should"] = "decrease"  # deep plain sigmoid nets get worse: a false claim
    studies = {
        "lab": LAB,
        "lab2": _body(report=[]),
        "contra": contra,
        "prof": _body(report=[], profiles={"quick": {"train.epochs": 2}}),
    }
    parents = {}
    for name, body in studies.items():
        spec = Spec.from_yaml(write_spec(root / "experiments", name, body))
        trials, seeds = (6, 3) if name == "lab" else (2, 3)
        parents[name] = fake_sweep(tracker, spec, trials=trials, seeds=seeds)
        if name == "prof":
            parents["prof@quick"] = fake_sweep(tracker, spec, trials=1, seeds=2, profile="quick", seed=1)
    yield Shared(root / "store", root / "experiments", parents, tracker.client)


@pytest.fixture
def here(shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNLAB_STORE", str(shared.store))
    monkeypatch.setenv("NNLAB_EXPERIMENTS", str(shared.experiments))
    return tmp_path


def test_report_files_figures_and_claims(shared: Shared, here: Path) -> None:
    report = build_report(["lab"])
    out = here / "reports" / "lab"
    assert report.out_dir == Path("reports/lab")
    html = (out / "report.html").read_text()
    figures = report.figures
    assert len(figures) >= 10
    assert html.count("<img") == len(figures)
    assert html.count("data:image/png;base64,") == len(figures)  # self-contained
    for fig in figures:
        assert f"id='{fig.name}'" in html
    # the report opens with the claims table, before any figure
    claims_at = html.index("<h2 id='claims'>Claims</h2>")
    assert claims_at < html.index("<table") < html.index("<img")
    for claim in report.claims["claim"]:
        assert claim in html[claims_at: html.index("<img")]
    assert list(report.claims["verdict"]) == ["supported", "supported"]
    md = (out / "report.md").read_text()
    assert md.index("## Claims") < md.index("![")
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == sorted(f"{f.name}.png" for f in figures)
    assert all(f"](figures/{name})" in md for name in pngs)
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 4 and set(cells["n"]) == {3}
    assert {"model.depth", "model.activation", "val_loss_mean", "val_loss_ci_low", "gap_loss_mean",
            "best_tune:train.learning_rate", "best_tune:model.dropout"} <= set(cells.columns)
    sections = [title for title, _ in report.studies[0].sections]
    assert sections == ["Comparison", "Overfitting", "Depth", "Learning rate"]
    assert report.problems == []
    # the three files land on the sweep's parent run
    parent = shared.parents["lab"]
    logged = {f.path for f in shared.client.list_artifacts(parent, "report")}
    assert logged == {"report/report.html", "report/report.md", "report/cells.csv"}
    assert report.logged_to == [parent]


def test_compare_always_runs(shared: Shared, here: Path) -> None:
    report = build_report(["lab2"], out=here / "elsewhere", log_artifacts=False)
    assert [t for t, _ in report.studies[0].sections] == ["Comparison"]
    assert (here / "elsewhere" / "report.html").exists() and report.logged_to == []


def test_several_studies_give_one_combined_report(shared: Shared, here: Path) -> None:
    report = build_report(["lab2", "contra"])
    out = here / "reports" / "lab2+contra"
    html = (out / "report.html").read_text()
    assert set(report.claims["study"]) == {"lab2", "contra"} and len(report.claims) == 4
    assert report.combined and report.combined[0].name == "across_val_loss"
    assert set(report.combined_frame["study"]) == {"lab2", "contra"}
    assert html.count("<img") == len(report.figures)
    assert html.index("Claims") < html.index("Across studies") < html.index("Study lab2")
    assert set(pd.read_csv(out / "cells.csv")["study"]) == {"lab2", "contra"}
    for name in ("lab2", "contra"):
        assert "report/report.html" in {f.path for f in shared.client.list_artifacts(shared.parents[name], "report")}


def test_command_prints_claims_and_check_passes(shared: Shared, here: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "lab2", "--check", "--no-log"]) == 0
    out = capsys.readouterr().out
    assert "supported" in out and "reports/lab2/report.html" in out


def test_check_fails_on_a_contradicted_claim(shared: Shared, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "contra", "--no-log"]) == 0  # without --check a contradiction is reported, not fatal
    assert main(["report", "contra", "--check", "--no-log"]) == 1
    out = capsys.readouterr().out
    assert "contradicted" in out and "check failed: 1 claim(s) contradicted" in out


def test_missing_study_exits_2_naming_the_studies(shared: Shared, here: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "nosuch"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(r"no study named 'nosuch'.*studies with runs in \S+: contra, lab, lab2, prof;", err)


def test_a_spec_without_runs_exits_2(shared: Shared, here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(here, "fresh", LAB)
    assert main(["report", str(spec)]) == 2
    assert "no runs of study 'fresh'" in capsys.readouterr().err
    assert not (here / "reports" / "fresh").exists()


def test_the_newest_sweep_or_the_profile_asked_for(shared: Shared, here: Path) -> None:
    report = build_report(["prof"], log_artifacts=False)
    study = report.studies[0].study
    assert study.parent_run_id == shared.parents["prof@quick"]  # the newest, whatever its profile
    assert study.spec.train.epochs == 2  # read with the profile the sweep ran under
    assert "sweep prof@quick" in Path("reports/prof/report.html").read_text()
    report = build_report(["prof"], profile="quick", log_artifacts=False)
    assert report.studies[0].study.parent_run_id == shared.parents["prof@quick"]
    assert main(["report", "prof", "--profile", "slow"]) == 2


def test_bootstrap_intervals(shared: Shared, here: Path) -> None:
    welch = build_report(["lab2"], log_artifacts=False).claims
    boot = build_report(["lab2"], method="bootstrap", log_artifacts=False).claims
    # the compare claim's arms share their repeats (paired), the trend's slope is resampled within levels
    assert list(boot["method"]) == ["paired bootstrap", "bootstrap"]
    assert list(welch["method"]) == ["paired", "paired slopes"]
    assert list(boot["verdict"]) == list(welch["verdict"])
    assert (boot["ci_low"] != welch["ci_low"]).all()


def test_the_report_says_when_repeats_shared_one_data_draw() -> None:
    from analysis_testkit import runs_table

    from analysis._report import repeats_note

    rows = [{"params": {"model.depth": 2, "train.seed": 1000 + k, "data.seed": d}, "seed_index": k, "cell": "c"}
            for k, d in enumerate([0, 0, 0])]
    assert "but not data.seed" in repeats_note(runs_table(rows))
    for k, row in enumerate(rows):
        row["params"]["data.seed"] = 1000 + k
    assert repeats_note(runs_table(rows)) == "repeats varied train.seed, data.seed"


def test_learning_curves_leave_out_the_final_point_after_the_epochs() -> None:
    import pandas as pd

    from analysis._report import epoch_history

    def history(run_ids, keys):
        return pd.DataFrame({"run_id": ["a"] * 4 + ["b"] * 2, "key": "val_loss", "step": [0, 1, 2, 3, 0, 1],
                             "value": [0.9, 0.5, 0.6, 0.5, 0.8, 0.7]})

    runs = pd.DataFrame({"run_id": ["a", "b"], "epochs_trained": [3.0, float("nan")]})
    hist = epoch_history(history, runs)(["a", "b"], ["val_loss"])
    assert list(hist["step"]) == [0, 1, 2, 0, 1]


def test_a_study_whose_runs_span_devices_is_flagged(lab: Path, tracker: Any) -> None:
    """Runs of one study on a CPU and on a GPU: the same setting can give other numbers on each, so the
    report says so (the runs table carries each run's device)."""
    spec, parent = make_study(lab, tracker, "devices", _body(report=[]), trials=2, seeds=3)
    runs = tracker.client.search_runs([tracker.experiment_id(spec.name)],
                                      filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    for i, run in enumerate(sorted(runs, key=lambda r: r.info.run_id)):
        tracker.set_tags(run.info.run_id, {"nnlab.device": "gpu:1" if i % 2 else "cpu:2"})
    report = build_report(["devices"], log_artifacts=False)
    (note,) = [p for p in report.problems if "devices" in p and "different devices" in p]
    assert "(cpu:2, gpu:1)" in note
    assert "Note: " + note in (lab / "reports" / "devices" / "report.md").read_text()
    for run in runs:
        tracker.set_tags(run.info.run_id, {"nnlab.device": "cpu:2"})
    assert not [p for p in build_report(["devices"], log_artifacts=False).problems if "different devices" in p]
