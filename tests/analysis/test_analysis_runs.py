"""Reading runs: typed params, the bulk SQL read against MLflow's own search, histories and their cache,
which sweep a study's report reads, and the errors for studies that are not there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from analysis_testkit import fake_sweep, write_spec
from conftest import LAB, make_study

from analysis._labels import is_missing, py
from analysis._runs import PARAM, RunReader, _table, load_spec, mask_where, same_value, select_runs
from nnlab.errors import SpecError
from nnlab.spec import Spec
from nnlab.tracking import resolve_store


def test_param_columns_are_typed_through_the_spec() -> None:
    """The main table reads each param as the type its spec key declares; unknown keys stay text."""
    specs = [Spec.from_dict({"name": "t", "data": {"dataset": "csv", "path": "d.csv", "target": target},
                             "model": {"depth": depth, "residual": residual},
                             "train": {"learning_rate": lr, "early_stopping": stop}})
             for target, depth, residual, lr, stop in (("8", 2, True, 1e-3, None), ("label", 8, False, 0.1, 5))]
    images = Spec.from_dict({"name": "t", "data": {"dataset": "digits", "augment": ["flip", "zoom"]}})
    logged = {f"r{i}": {k: "null" if v is None else str(v) for k, v in s.flat_params().items()}
              for i, s in enumerate([*specs, images])}
    logged["r0"]["lab.note"] = "12"  # a param the spec does not know
    base = [(rid, rid, "FINISHED", 100 - i, 200) for i, rid in enumerate(logged)]
    params = [(rid, key, text) for rid, row in logged.items() for key, text in row.items()]
    runs = _table(base, [], [], params, "t").set_index("run_id")
    for rid, spec in zip(logged, [*specs, images], strict=True):
        for key, value in spec.flat_params().items():
            got = runs.loc[rid, PARAM + key]
            # as reports compare them: None as missing, numbers with their column's dtype, True is not 1
            assert is_missing(got) if value is None else same_value(got, value), (rid, key, got, value)
    for key, kind in (("model.depth", int), ("model.residual", bool), ("train.learning_rate", float),
                      ("data.target", str), ("data.augment", tuple)):
        present = [py(v) for v in runs[PARAM + key] if not is_missing(v)]
        assert len(present) >= 2 and all(type(v) is kind for v in present), (key, present)
    assert runs.loc["r0", PARAM + "data.target"] == "8"  # a string that looks like a number stays one
    assert runs.loc["r0", PARAM + "lab.note"] == "12" and pd.isna(runs.loc["r1", PARAM + "lab.note"])
    assert runs[PARAM + "data.augment"].nunique() == 2  # tuples: hashable, as reports group them
    assert mask_where(runs, {"data.augment": ["flip", "zoom"]}).tolist() == [False, False, True]
    assert mask_where(runs, {"model.depth": 8, "train.early_stopping": 5}).tolist() == [False, True, False]


def test_bulk_read_equals_mlflow_search(lab: Path, tracker: Any) -> None:
    spec, parent = make_study(lab, tracker, trials=2, seeds=2)
    reader = RunReader(resolve_store())
    assert reader.db is not None  # the embedded store is read with sqlite3
    fast = reader.search("lab", {"mlflow.parentRunId": parent})
    exp_id = reader.experiments()["lab"].experiment_id
    # the reference: mlflow.search_runs(output_format="pandas"), the reader's path for every other store
    slow = reader._api_frame(exp_id, {"mlflow.parentRunId": parent}, "lab")
    assert len(fast) == 4 * 4
    assert sorted(fast.columns) == sorted(slow.columns)
    cols = sorted(fast.columns)
    pd.testing.assert_frame_equal(fast.sort_values("run_id")[cols].reset_index(drop=True),
                                  slow.sort_values("run_id")[cols].reset_index(drop=True))
    assert fast["run_id"].tolist() == slow["run_id"].tolist()  # the same order: newest first
    row = fast[fast["phase"] == "confirm"].iloc[0]
    assert row["param:model.depth"] in (2, 8) and row["param:data.train_size"] is None
    assert row["status"] == "completed" and row["parent_run_id"] == parent and row["seed_index"] in (0, 1)
    assert {"val_loss", "grad_norm/hidden_01", "gap_loss", "test_accuracy"} <= set(fast.columns)


def test_histories_are_read_in_bulk_and_cached(lab: Path, tracker: Any) -> None:
    _, parent = make_study(lab, tracker, trials=1, seeds=1, epochs=4)
    store = resolve_store()
    reader = RunReader(store)
    runs = reader.search("lab", {"mlflow.parentRunId": parent})
    ids = runs["run_id"].tolist()[:3]
    hist = reader.history(ids, ["loss", "val_loss"])
    assert set(hist.columns) == {"run_id", "key", "step", "value"}
    for rid in ids:
        steps = hist[(hist["run_id"] == rid) & (hist["key"] == "loss")]["step"].tolist()
        assert steps == sorted(set(steps)) and steps[0] == 0  # one value per epoch, from epoch 0
    cached = list((store.root / "cache" / "analysis" / "histories").rglob("*.json"))
    assert len(cached) == 3
    again = RunReader(store)
    again.search("lab", {"mlflow.parentRunId": parent})
    again._fetch = lambda *a: pytest.fail("history read again instead of from the cache")  # type: ignore[method-assign]
    pd.testing.assert_frame_equal(again.history(ids, ["loss", "val_loss"]), hist)


def test_direct_histories_equal_mlflow_bulk_history(lab: Path, tracker: Any) -> None:
    _, parent = make_study(lab, tracker, trials=1, seeds=1, epochs=4)
    reader = RunReader(resolve_store(), cache=False)
    ids = reader.search("lab", {"mlflow.parentRunId": parent})["run_id"].tolist()
    direct = {key: reader._fetch(ids, key) for key in ("loss", "val_accuracy", "no_such_metric")}
    assert reader.db is not None
    reader.db = None  # from here on through MLflow's public client
    via_mlflow = {key: reader._fetch(ids, key) for key in ("loss", "val_accuracy", "no_such_metric")}
    assert direct == via_mlflow
    assert len(direct["loss"]) == len(ids) and all(len(v) == 4 for v in direct["loss"].values())
    assert direct["no_such_metric"] == {}


def test_reading_an_embedded_store_imports_no_mlflow(lab: Path, tracker: Any) -> None:
    import subprocess
    import sys

    _, parent = make_study(lab, tracker, trials=1, seeds=1, epochs=3)
    code = ("import sys; from analysis._runs import RunReader; from nnlab.tracking import resolve_store; "
            "r = RunReader(resolve_store()); runs = r.search('lab', {'mlflow.parentRunId': sys.argv[1]}); "
            "h = r.history(runs['run_id'].tolist(), ['loss']); "
            "print(len(runs), len(h), r.study_names(), sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))")
    out = subprocess.run([sys.executable, "-c", code, parent], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2])
    assert out.stdout.split() == ["8", "24", "['lab']", "[]"], out.stdout + out.stderr


def test_a_sqlite_file_that_is_not_mlflows_is_left_to_mlflow(tmp_path: Path) -> None:
    import sqlite3

    from analysis._runs import SqliteRuns

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE runs (x)")
    assert SqliteRuns.open(f"sqlite:///{other}") is None
    assert SqliteRuns.open(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert SqliteRuns.open("postgresql://localhost/test") is None
    with pytest.raises(Exception, match="cannot read"):
        RunReader(resolve_store(f"sqlite:///{other}")).experiments()


def test_the_newest_sweep_is_read_and_a_profile_selects_its_own(lab: Path, tracker: Any) -> None:
    spec, first = make_study(lab, tracker, trials=1, seeds=2)
    quick = fake_sweep(tracker, spec, trials=1, seeds=2, profile="quick", seed=3)
    newest = fake_sweep(tracker, spec, trials=1, seeds=2, seed=4)
    reader = RunReader(resolve_store())
    study = select_runs(spec, reader)
    assert study.parent_run_id == newest and set(study.runs["parent_run_id"]) == {newest}
    assert "2 older sweep(s)" in study.source
    study = select_runs(spec, reader, profile="quick")
    assert (study.parent_run_id, study.sweep_id) == (quick, "lab@quick")
    with pytest.raises(SpecError, match="no sweep lab@nope"):
        select_runs(spec, reader, profile="nope")
    assert first not in {newest, quick}


def test_single_runs_without_a_sweep(lab: Path, tracker: Any) -> None:
    path = write_spec(lab / "experiments", "solo", {"data": {"dataset": "moons"}, "model": {"width": 8}})
    spec = Spec.from_yaml(path)
    for seed in range(3):
        rid = tracker.start_run("solo", run_name="solo", tags={"nnlab.phase": "run", "nnlab.status": "completed"})
        tracker.log_params(rid, {**spec.flat_params(), "train.seed": seed})
        tracker.log_metrics(rid, {"loss": 0.5, "val_loss": 0.6 + 0.01 * seed}, step=0)
        tracker.end_run(rid, "FINISHED")
    study = select_runs(spec, RunReader(resolve_store()))
    assert study.parent_run_id is None and len(study.runs) == 3
    assert set(study.runs["cell"]) == {"default"} and "single runs" in study.source


def test_linked_grid_factors_get_their_labels(lab: Path, tracker: Any) -> None:
    body = {**LAB, "sweep": {**LAB["sweep"], "grid": {
        "model.depth": [2, 8],
        "variant": [{"label": "plain", "model.residual": False, "model.normalization": "none"},
                    {"label": "residual", "model.residual": True, "model.normalization": "batch"}]}},
        "expect": [{"compare": {"metric": "val_loss", "better": {"variant": "residual"},
                                "than": {"variant": "plain"}, "where": {"model.depth": 8}}}]}
    spec, _ = make_study(lab, tracker, "linked", body, trials=2, seeds=2)
    study = select_runs(spec, RunReader(resolve_store()))
    assert set(study.runs["param:variant"]) == {"plain", "residual"}
    res = study.runs[study.runs["param:variant"] == "residual"]
    assert set(res["param:model.residual"]) == {True} and set(res["param:model.normalization"]) == {"batch"}
    from analysis._expect import evaluate_claims

    claim = evaluate_claims(study.runs, spec).iloc[0]
    assert (claim["n_better"], claim["n_than"]) == (2, 2)


def test_a_study_nobody_wrote_names_the_ones_that_exist(lab: Path, tracker: Any) -> None:
    make_study(lab, tracker, trials=1, seeds=1)
    write_spec(lab / "experiments", "planned", {"data": {"dataset": "moons"}})
    reader = RunReader(resolve_store())
    with pytest.raises(SpecError, match=r"no study named 'nosuch'.*studies with runs in sqlite:\S+: lab; "
                                        r"spec files in experiments/: .*\bplanned\b"):
        load_spec("nosuch", None, reader)
    spec = load_spec("planned", None, reader)
    with pytest.raises(SpecError, match=r"no runs of study 'planned' in sqlite:.*studies in this store: lab"):
        select_runs(spec, reader)


def test_a_study_only_in_the_store_uses_the_spec_its_sweep_logged(lab: Path, tracker: Any) -> None:
    make_study(lab, tracker, trials=1, seeds=1)
    (lab / "experiments" / "lab.yaml").unlink()
    spec = load_spec("lab", None, RunReader(resolve_store()))
    assert spec.name == "lab" and list(spec.sweep.grid) == ["model.depth", "model.activation"]
    assert len(spec.expect) == 2


def test_an_empty_store_is_not_created_by_reading(lab: Path) -> None:
    store = resolve_store()
    reader = RunReader(store)
    assert reader.study_names() == [] and not store.db_path.exists()
