"""In-process services over a real database (SQLite file or PostgreSQL schema), with an
injectable clock, for what a subprocess cannot show: what is stored, and time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keykeeper.custody.keyring import Custody
from keykeeper.service.audit import Auditor
from keykeeper.service.context import Principal, RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.facade import Services, build_services
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class ListSink:
    def __init__(self) -> None:
        self.records: list[object] = []

    def write(self, record: object) -> None:
        self.records.append(record)


@dataclass
class Node:
    services: Services
    clock: Clock
    sink: ListSink

    def ctx(self) -> RequestContext:
        return RequestContext(interface="test", principal=Principal("root"))


def make_node(url: str, clock: Clock, metadata_ttl: float = 1.0) -> Node:
    engine = make_engine(url)
    sink = ListSink()
    deps = Deps(engine=engine, custody=Custody(), clock=clock)
    return Node(build_services(deps, Auditor([sink], clock), metadata_ttl=metadata_ttl),
                clock, sink)


PASSPHRASE = "in-process test passphrase"
ROOT_TOKEN = "kk.known-root-token-for-at-rest-scan-0123456789"


@pytest.fixture
def node(database_url: str) -> Iterator[Node]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    n = make_node(database_url, Clock())
    n.services.system.init(PASSPHRASE, root_token=ROOT_TOKEN)
    n.services.system.unseal(PASSPHRASE)
    yield n
    n.services.deps.engine.dispose()


@pytest.fixture
def sqlite_path(database_url: str) -> Path | None:
    return Path(database_url.removeprefix("sqlite:///")) if database_url.startswith("sqlite") \
        else None
