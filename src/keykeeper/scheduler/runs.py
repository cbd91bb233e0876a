"""The ``scheduler_jobs`` table: the last run of each job, written by whichever node
leads, so that every node (and a new leader after a failover) sees when a job last ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from keykeeper.store.schema import scheduler_jobs

__all__ = ["JobRun", "JobRuns"]

_DETAIL_MAX = 500  # characters of a run's detail kept


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class JobRun:
    """One job's last run: the node that ran it, when it started and finished, how it
    ended (``running`` | ``success`` | ``partial`` | ``error``) and its counts."""

    name: str
    node: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_outcome: str | None
    items_done: int
    items_failed: int
    detail: str | None


class JobRuns:
    """Reads and writes ``scheduler_jobs`` rows, each write its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, name: str) -> JobRun | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(scheduler_jobs)
                               .where(scheduler_jobs.c.name == name)).first()
        return None if row is None else _run(row)

    def all(self) -> list[JobRun]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(scheduler_jobs).order_by(scheduler_jobs.c.name))
            return [_run(r) for r in rows]

    def started(self, name: str, node: str, at: datetime) -> None:
        self._upsert(name, node=node, last_started_at=at, last_outcome="running")

    def finished(self, name: str, node: str, at: datetime, outcome: str, done: int,
                 failed: int, detail: str | None) -> None:
        self._upsert(name, node=node, last_finished_at=at, last_outcome=outcome,
                     items_done=done, items_failed=failed,
                     detail=detail[:_DETAIL_MAX] if detail else None)

    def _upsert(self, name: str, **values: object) -> None:
        for _ in range(2):
            with self._engine.begin() as conn:
                changed = conn.execute(update(scheduler_jobs)
                                       .where(scheduler_jobs.c.name == name).values(**values))
                if changed.rowcount:
                    return
            try:
                with self._engine.begin() as conn:
                    conn.execute(insert(scheduler_jobs).values(name=name, **values))
                return
            except IntegrityError:  # another node inserted it first: update it instead
                continue


def _run(row: object) -> JobRun:
    r = row._mapping  # type: ignore[attr-defined]
    return JobRun(name=r["name"], node=r["node"], last_started_at=_utc(r["last_started_at"]),
                  last_finished_at=_utc(r["last_finished_at"]), last_outcome=r["last_outcome"],
                  items_done=int(r["items_done"] or 0), items_failed=int(r["items_failed"] or 0),
                  detail=r["detail"])
