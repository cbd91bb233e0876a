"""In-process scheduler over a real database (SQLite file or PostgreSQL schema), with the
injected clock of tests/integration: tests move time and call ``run_due``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from keykeeper.domain.keys import Key
from keykeeper.scheduler import Scheduler
from keykeeper.service.key_args import CreateKey
from keykeeper.service.lifecycle_jobs import build_scheduler
from keykeeper.store.schema import key_events, keys
from tests.integration.conftest import Node, node  # noqa: F401 - the fixture

__all__ = ["Harness"]


@dataclass
class Harness:
    node: Node
    scheduler: Scheduler
    notices: list[tuple[Any, ...]] = field(default_factory=list)
    runs: list[tuple[str, str, int, int]] = field(default_factory=list)

    def create(self, name: str, **kw: Any) -> Key:
        return self.node.services.keys.create(self.node.ctx(), CreateKey(name=name, **kw))

    def key(self, key_id: str) -> Key:
        deps = self.node.services.deps
        with deps.reading() as conn:
            found = deps.keys.get_by_id(conn, key_id)
        assert found is not None
        return found

    def set(self, key_id: str, **values: Any) -> None:
        """Change a key's row directly (test set-up of dates and periods)."""
        deps = self.node.services.deps
        with deps.transaction() as conn:
            conn.execute(update(keys).where(keys.c.id == key_id).values(**values))
        self.node.services.lookup.forget(self.key(key_id))

    def events(self, key_id: str, action: str) -> list[Any]:
        with self.node.services.deps.reading() as conn:
            return list(conn.execute(select(key_events).where(
                key_events.c.key_id == key_id, key_events.c.action == action)))


@pytest.fixture
def harness(node: Node, tmp_path: Path) -> Iterator[Harness]:  # noqa: F811
    svc = node.services
    h = Harness(node, None)  # type: ignore[arg-type]
    h.scheduler = build_scheduler(
        svc.deps, svc.lookup, svc.approvals, svc.audit, data_dir=tmp_path,
        node_id="test-node", interval_seconds=60, destroy_due=svc.destruction.destroy_due,
        notify=lambda *a: h.notices.append(a),
        on_run=lambda job, outcome, _s, done, failed: h.runs.append(
            (job, outcome, done, failed)))
    yield h
    h.scheduler.stop()
