"""Principals, grants and tokens written straight into a test server's store.

Used by tests that need callers other than root independent of the admin API (which
has tests of its own). The server picks the rows up as it would after an API call made
on another node: tokens at once (unknown tokens are read from the store), grants and
roles within the policy cache TTL (1 s).
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from types import MappingProxyType

from keykeeper.authz.condition import parse_condition
from keykeeper.authz.model import Grant, Principal, Role, Scope
from keykeeper.service.auth import hash_token, new_token
from keykeeper.store.engine import make_engine
from keykeeper.store.identity import IdentityRepository

POLICY_TTL = 1.1  # seconds: the server's policy snapshot TTL, plus a margin


def add_principal(database_url: str, name: str, roles: tuple[str, ...], *,
                  grants: tuple[dict[str, object], ...] = (),
                  metadata: dict[str, str] | None = None,
                  rate_limit: float | None = None, wait: bool = True) -> str:
    """Create principal ``name`` with ``roles`` and ``grants`` (dicts of Grant fields:
    operations, namespace, key_pattern, labels, condition); return a new token of it."""
    repo = IdentityRepository()
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    token = new_token()
    try:
        with engine.begin() as conn:
            repo.insert_principal(conn, Principal(
                name=name, kind="service", roles=roles,
                metadata=MappingProxyType(metadata or {}), rate_limit=rate_limit,
                created_by="test", created_at=now, updated_at=now))
            for g in grants:
                condition = g.get("condition")
                repo.insert_grant(conn, Grant(
                    id="g-" + secrets.token_hex(16), grantee_kind="principal", grantee=name,
                    operations=tuple(g["operations"]),  # type: ignore[call-overload]
                    scope=Scope(str(g.get("namespace", "*")), str(g.get("key_pattern", "*")),
                                MappingProxyType(dict(g.get("labels", {})))),  # type: ignore[call-overload]
                    condition=parse_condition(str(condition)) if condition else None,
                    created_by="test", created_at=now))
            repo.insert_token(conn, token_hash=hash_token(token),
                              accessor="acc-" + secrets.token_hex(12), principal=name,
                              display_name="test", created_by="test", created_at=now,
                              expires_at=None, ttl=None)
    finally:
        engine.dispose()
    if wait and grants:
        time.sleep(POLICY_TTL)
    return token


def add_role(database_url: str, name: str, operations: tuple[str, ...]) -> None:
    now = datetime.now(UTC)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            IdentityRepository().insert_role(conn, Role(
                name=name, description="test role", operations=operations, created_at=now,
                updated_at=now))
    finally:
        engine.dispose()
