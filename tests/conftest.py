"""Shared fixtures: storage backends (SQLite and PostgreSQL) and real servers.

Every storage-touching test runs on both backends. PostgreSQL is the machine's
(127.0.0.1:5432, trust auth, database ``test``); each test database lives in a
schema of its own, dropped afterwards. If PostgreSQL cannot be reached, its
cases are skipped with the reason (``make test`` starts it first).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

PG_DSN = os.environ.get("KEYKEEPER_TEST_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")
BACKENDS = ["sqlite", "postgresql"]
_pg_error: str | None = None
_pg_checked = False


def pg_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not."""
    global _pg_checked, _pg_error
    if not _pg_checked:
        _pg_checked = True
        try:
            import psycopg
            with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
                conn.execute("select 1")
        except Exception as exc:
            _pg_error = f"PostgreSQL not reachable ({type(exc).__name__}: {exc})"
    return _pg_error


class PgSchema:
    def __init__(self) -> None:
        import psycopg
        self.name = "kk_" + secrets.token_hex(6)
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    @property
    def url(self) -> str:
        params = dict(p.split("=", 1) for p in PG_DSN.split())
        return (f"postgresql+psycopg://{params.get('user', 'postgres')}@{params['host']}:"
                f"{params['port']}/{params['dbname']}?options=-csearch_path%3D{self.name}")

    def drop(self) -> None:
        import psycopg
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and (reason := pg_available()):
        pytest.skip(reason)
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'keykeeper.db'}"
        return
    schema = PgSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture(scope="session", params=BACKENDS)
def live_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One initialised, unsealed server per backend for the whole session (per xdist worker)."""
    if request.param == "postgresql" and (reason := pg_available()):
        pytest.skip(reason)
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    schema = PgSchema() if request.param == "postgresql" else None
    url = schema.url if schema else f"sqlite:///{data_dir / 'keykeeper.db'}"
    server = ServerProcess(data_dir=data_dir, database_url=url, backend=str(request.param))
    try:
        server.start()
        server.init_and_unseal()
        yield server
    finally:
        server.stop()
        if schema:
            schema.drop()
