"""In-process audit trails over real files (and a real SQLite database when asked)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from keykeeper.custody.keyring import Custody
from keykeeper.service.audit import Auditor
from keykeeper.service.audit_setup import AuditSettings, build_auditor
from keykeeper.service.context import Principal, RequestContext
from keykeeper.service.deps import Deps, utcnow
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade

TOKEN = "kk.audit-test-token-0123456789abcdef"


def ctx(operation_key: str | None = None, **fields: object) -> RequestContext:
    c = RequestContext(interface="test", principal=Principal("tester"), token=TOKEN,
                       source="127.0.0.1")
    for name, value in fields.items():
        setattr(c, name, value)
    if operation_key:
        c.namespace, c.key_id, c.key_version = "default", operation_key, 1
    return c


@pytest.fixture
def deps(tmp_path: Path) -> Iterator[Deps]:
    engine = make_engine(f"sqlite:///{tmp_path / 'keykeeper.db'}")
    upgrade(engine)
    custody = Custody()
    custody.unseal(os.urandom(32))
    yield Deps(engine=engine, custody=custody, clock=utcnow)
    engine.dispose()


class Trail:
    """Builds Auditors on one audit file, as successive server processes would."""

    def __init__(self, deps: Deps, path: Path) -> None:
        self.deps, self.path = deps, path
        self.built: list[Auditor] = []
        self.alerts: list[str] = []

    def open(self, sinks: str = "file:required", **settings: object) -> Auditor:
        values: dict[str, object] = {"node_id": "node-a", "checkpoint_seconds": 0.0,
                                     "timeout": 2.0, **settings}
        auditor = build_auditor(AuditSettings(file=self.path, sinks=sinks, **values),  # type: ignore[arg-type]
                                self.deps, clock=utcnow, on_alert=self.alerts.append)
        self.built.append(auditor)
        return auditor

    def close_all(self) -> None:
        for a in self.built:
            a.close(timeout=2.0)


@pytest.fixture
def trail(deps: Deps, tmp_path: Path) -> Iterator[Trail]:
    t = Trail(deps, tmp_path / "audit" / "audit.log")
    yield t
    t.close_all()
