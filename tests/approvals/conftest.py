"""In-process services (tests/integration harness: real database, injected clock) with
principals written straight into the store: a security officer, a crypto officer, three
key custodians and an auditor. Each ``who(name)`` is a request context of one of them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from keykeeper.authz.model import Grant, Principal, Scope
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.integration.conftest import PASSPHRASE, ROOT_TOKEN, Clock, Node, make_node

PEOPLE: dict[str, tuple[str, ...]] = {
    "so": ("security-officer",),
    "co": ("crypto-officer",),
    "c1": ("key-custodian",),
    "c2": ("key-custodian",),
    "c3": ("key-custodian",),
    "aud": ("auditor",),
    "app": ("application",),
}


@dataclass
class Team:
    node: Node

    @property
    def svc(self) -> Services:
        return self.node.services

    def who(self, name: str) -> RequestContext:
        with self.svc.deps.reading() as conn:
            p = self.svc.deps.identity.get_principal(conn, name)
        assert p is not None, name
        return RequestContext(interface="test", principal=p)

    def root(self) -> RequestContext:
        return RequestContext(interface="test", principal=Principal("root", kind="person"))

    def add(self, name: str, roles: tuple[str, ...], *,
            grants: tuple[tuple[str, ...], ...] = ()) -> RequestContext:
        """A principal with ``roles`` and grants of operations on every key."""
        now: datetime = self.node.clock()
        deps = self.svc.deps
        with deps.transaction() as conn:
            deps.identity.insert_principal(conn, Principal(
                name=name, kind="person", roles=roles, created_by="test", created_at=now,
                updated_at=now))
            # A live token, as a real principal has: only principals someone can act as
            # count as approvers in the lock-out guards.
            deps.identity.insert_token(
                conn, token_hash=secrets.token_hex(32), accessor="acc-" + secrets.token_hex(16),
                principal=name, display_name="test", created_by="test", created_at=now,
                expires_at=None, ttl=None)
            for ops in grants:
                deps.identity.insert_grant(conn, Grant(
                    id="g-" + secrets.token_hex(16), grantee_kind="principal", grantee=name,
                    operations=ops, scope=Scope("*", "*", MappingProxyType({})),
                    created_by="test", created_at=now))
        self.svc.authz.invalidate()
        return self.who(name)

    def set_disabled(self, name: str, disabled: bool = True) -> None:
        deps = self.svc.deps
        with deps.transaction() as conn:
            p = deps.identity.get_principal(conn, name)
            assert p is not None
            deps.identity.update_principal(conn, Principal(
                name=p.name, kind=p.kind, roles=p.roles, metadata=p.metadata,
                disabled=disabled, created_by=p.created_by, created_at=p.created_at,
                updated_at=self.node.clock()))
        self.svc.authz.invalidate()


@pytest.fixture
def team(database_url: str) -> Iterator[Team]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    n = make_node(database_url, Clock())
    n.services.system.init(PASSPHRASE, root_token=ROOT_TOKEN)
    n.services.system.unseal(PASSPHRASE)
    t = Team(n)
    for name, roles in PEOPLE.items():
        t.add(name, roles)
    yield t
    n.services.deps.engine.dispose()


@pytest.fixture
def sqlite_path(database_url: str) -> Path | None:
    return (Path(database_url.removeprefix("sqlite:///")) if database_url.startswith("sqlite")
            else None)
