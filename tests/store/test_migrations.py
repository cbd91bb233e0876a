"""Alembic migrations build exactly the schema the code uses, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from keykeeper.store.schema import metadata


def test_upgrade_matches_metadata_and_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # a second start changes nothing
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == []
        assert {"keys", "key_versions", "namespaces", "tokens", "alembic_version"} <= tables
    finally:
        engine.dispose()


def test_sqlite_pragmas(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/p.db")
    with engine.connect() as conn:
        pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                   for p in ("journal_mode", "foreign_keys", "secure_delete")}
    engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "secure_delete": 1}
