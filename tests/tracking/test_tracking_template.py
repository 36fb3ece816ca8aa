"""A new embedded store is a copy of the migrated empty database: usable, pointed at itself, never
replacing a database that exists, and MLflow's own creation where no template can be kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nnlab.tracking import resolve_store
from nnlab.tracking._mlflow import Tracker
from nnlab.tracking._template import ensure_template, seed_store, template_path


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # one template for the module: building it takes seconds


@pytest.fixture
def cache(shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NNLAB_CACHE", str(shared_cache))
    return shared_cache


def _alembic_version(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_a_new_store_is_seeded_from_the_template_and_works(cache: Path, tmp_path: Path) -> None:
    template = ensure_template()
    assert template is not None and template == template_path() and template.parent == cache
    store = resolve_store(None, str(tmp_path / "store"))
    tracker = Tracker(store)  # seeds, then opens through MLflow (which checks the schema)
    assert store.db_path.is_file()
    assert _alembic_version(store.db_path) == _alembic_version(template)
    default = tracker.client.get_experiment("0")
    assert default.artifact_location == (store.artifact_root.resolve() / "0").as_uri()
    run = tracker.client.create_run(tracker.experiment_id("seeded"))
    tracker.client.log_metric(run.info.run_id, "loss", 0.5)
    assert tracker.client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".mlflow-")] == []  # no scratch left
    with sqlite3.connect(template) as conn:  # the template itself is never written to
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_an_existing_database_is_never_replaced(cache: Path, tmp_path: Path) -> None:
    store = resolve_store(None, str(tmp_path / "store"))
    tracker = Tracker(store)
    tracker.experiment_id("kept")
    assert seed_store(store) is False
    assert Tracker(store).client.get_experiment_by_name("kept") is not None


def test_without_a_usable_cache_mlflow_creates_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("NNLAB_CACHE", str(blocker))
    assert ensure_template() is None
    store = resolve_store(None, str(tmp_path / "store"))
    assert seed_store(store) is False
    tracker = Tracker(store)
    assert tracker.experiment_id("created") is not None
    assert store.db_path.is_file()
