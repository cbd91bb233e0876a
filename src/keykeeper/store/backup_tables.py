"""What a backup holds of the store, generically over store/schema.py.

Every table of the schema is either archived (:data:`ARCHIVED`, in record order) or left
out with its reason (:data:`LEFT_OUT`); a test checks that no table is in neither, so a
table added later is not silently lost. An archived table keeps every column, typed by
its SQLAlchemy type, except the wrapped columns: ``namespaces.wrapped_kek`` is never
archived (a restore makes a fresh KEK in the target), ``key_versions.wrapped_material``
travels re-wrapped under the backup key (kind ``material``). Surrogate keys
(``key_events.id``) are archived but not restored: the target numbers rows itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Table,
    delete,
    func,
    insert,
    select,
)

from keykeeper.authz.model import ROOT
from keykeeper.store import schema as s

__all__ = ["ARCHIVED", "LEFT_OUT", "ArchivedTable", "column_kinds", "count", "delete_rows",
           "insert_rows", "iter_rows", "kind_of", "stream"]

POLICY_CONFIG_NAMES = ("approvals.policy", "authz.sod_conflicts")


@dataclass(frozen=True)
class ArchivedTable:
    table: Table
    omitted: tuple[str, ...] = ()        # never archived (wrapped under this instance's root)
    material: str | None = None          # re-wrapped under the backup key
    surrogate: tuple[str, ...] = ()      # archived, not restored (the target numbers them)
    config_names: tuple[str, ...] = ()   # system_config: only these rows
    excluded: tuple[tuple[str, str], ...] = ()  # (column, value): rows never archived

    @property
    def name(self) -> str:
        return self.table.name


ARCHIVED: tuple[ArchivedTable, ...] = (
    ArchivedTable(s.namespaces, omitted=("wrapped_kek",)),
    ArchivedTable(s.keys),
    ArchivedTable(s.key_labels),
    ArchivedTable(s.key_versions, material="wrapped_material"),
    ArchivedTable(s.key_events, surrogate=("id",)),
    ArchivedTable(s.principals),
    # The init (root) token is the break-glass of its own instance: never archived.
    ArchivedTable(s.tokens, excluded=(("principal", ROOT),)),
    ArchivedTable(s.roles),
    ArchivedTable(s.grants),
    ArchivedTable(s.system_config, config_names=POLICY_CONFIG_NAMES),
    ArchivedTable(s.destruction_receipts),
)

LEFT_OUT: Mapping[str, str] = {
    "approvals": "requests in flight belong to the instance that holds them",
    "approval_votes": "votes on requests in flight (see approvals)",
    "audit_records": "the trail stays with its sinks; the archive holds the chain head and "
                     "its last signed checkpoint",
    "key_usage": "usage statistics of this instance",
    "alerts": "alerts of this instance",
    "scheduler_jobs": "the scheduler's run state of this instance",
    "import_tokens": "short-lived import wrapping keys, wrapped under this instance's KEKs",
}


def kind_of(column: Any) -> str:
    t = column.type
    if isinstance(t, DateTime):
        return "datetime"
    if isinstance(t, LargeBinary):
        return "bytes"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, Integer | BigInteger):
        return "int"
    if isinstance(t, Float):
        return "float"
    return "string"


def column_kinds(spec: ArchivedTable) -> list[tuple[str, str]]:
    """``(column, kind)`` of every archived column, in schema order."""
    return [(c.name, "material" if c.name == spec.material else kind_of(c))
            for c in spec.table.columns if c.name not in spec.omitted]


def _filtered(spec: ArchivedTable, stmt: Any) -> Any:
    if spec.config_names:
        stmt = stmt.where(spec.table.c.name.in_(spec.config_names))
    for column, value in spec.excluded:
        stmt = stmt.where(spec.table.c[column] != value)
    return stmt


def iter_rows(conn: Connection, spec: ArchivedTable, *,
              batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every row of the table (filtered for system_config), ordered by primary key,
    streamed ``batch`` rows at a time."""
    t = spec.table
    cols = [c for c in t.columns if c.name not in spec.omitted]
    stmt = _filtered(spec, select(*cols).order_by(*t.primary_key.columns))
    yield from stream(conn, stmt, batch=batch)


def stream(conn: Connection, stmt: Any, *, batch: int = 500) -> Iterator[dict[str, Any]]:
    """The rows of ``stmt`` as dicts, ``batch`` at a time (a server-side cursor on
    PostgreSQL). The option is set on the statement, not the connection: on the connection
    it would turn every later query of the transaction into DECLARE/FETCH/CLOSE."""
    result = conn.execute(stmt.execution_options(stream_results=True, yield_per=batch))
    for row in result:
        yield dict(row._mapping)


def count(conn: Connection, spec: ArchivedTable) -> int:
    return int(conn.execute(_filtered(spec, select(func.count()).select_from(spec.table)))
               .scalar_one())


def insert_rows(conn: Connection, spec: ArchivedTable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (the archive's columns; surrogate keys dropped)."""
    if rows:
        conn.execute(insert(spec.table), [{k: v for k, v in r.items()
                                           if k not in spec.surrogate} for r in rows])


def delete_rows(conn: Connection, spec: ArchivedTable) -> None:
    """Delete the table's rows a restore replaces (system_config: only the policy rows)."""
    conn.execute(_filtered(spec, delete(spec.table)))
