"""Fixtures of the nnlab.sweep tests: a shared embedded store, a scratch folder, PostgreSQL databases."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedded store (NNLAB_STORE) for the end-to-end tests; each test uses its own spec name,
    so its experiment and sweep studies are its own."""
    return tmp_path_factory.mktemp("nnlab-store")


def _pg_unreachable() -> str | None:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=2):
            pass
    except OSError as exc:
        return f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} ({exc})"
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed"
    for user in ("postgres", "root"):
        try:
            psycopg2.connect(host=PG_HOST, port=PG_PORT, user=user, dbname="postgres", connect_timeout=5).close()
            return None
        except psycopg2.Error:
            continue
    return f"no PostgreSQL role postgres/root without password on {PG_HOST}:{PG_PORT}"


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    """Two fresh PostgreSQL databases (Optuna, MLflow) as SQLAlchemy URLs; dropped afterwards."""
    reason = _pg_unreachable()
    if reason:
        pytest.skip(reason)
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres")
    conn.autocommit = True
    tag = uuid.uuid4().hex[:10]
    names = [f"nnlab_test_optuna_{tag}", f"nnlab_test_mlflow_{tag}"]
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"CREATE DATABASE {name}")
    try:
        yield (f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{names[0]}",
               f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{names[1]}")
    finally:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()
