"""Fixtures: a store URL per backend (a SQLite file, a fresh schema on the real PostgreSQL server).

PostgreSQL is the server at ``$DEVOPSIM_TEST_POSTGRES`` (default
``postgresql+psycopg://root@127.0.0.1:5432/test``). Each test gets its own schema,
dropped afterwards. Without a server the PostgreSQL cases skip, unless
``DEVOPSIM_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import one_service

PG = os.environ.get("DEVOPSIM_TEST_POSTGRES", "postgresql+psycopg://root@127.0.0.1:5432/test")


def _pg_unavailable() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL at {PG} is unreachable: {str(exc).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    why = _pg_unavailable()
    if why is not None:
        if os.environ.get("DEVOPSIM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"DEVOPSIM_REQUIRE_POSTGRES=1 but {why}")
        pytest.skip(why)
    return PG


def pg_schema_url(server: str) -> tuple[str, str]:
    """A fresh schema on the server and a URL whose connections use it."""
    import sqlalchemy as sa

    schema = f"devopsim_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{server}?options=-csearch_path%3D{schema}"


def drop_schema(server: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(server)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL to an empty PostgreSQL schema of its own."""
    schema, url = pg_schema_url(pg_server)
    try:
        yield url
    finally:
        drop_schema(pg_server, schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs once against SQLite and once against PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
        return
    server = request.getfixturevalue("pg_server")
    schema, url = pg_schema_url(server)
    try:
        yield url
    finally:
        drop_schema(server, schema)


def small_scenario(path: Path, duration: str = "10m", rate: float = 5.0, seed: int = 3) -> Path:
    """Write a one-service scenario (request plane, 15 s scrapes) and return its file."""
    sc = one_service(rate, "exp(100ms)", concurrency=2, duration=duration, scrape="15s", seed=seed)
    sc["name"] = "small"
    path.write_text(yaml.safe_dump(sc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    return small_scenario(tmp_path / "small.yaml")
