"""In-process nodes (tests/integration/conftest.py) and helpers to set lifecycle columns
directly and read the stored usage counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from keykeeper.domain.keys import Key
from keykeeper.service.usage import UsageCounter
from keykeeper.store.schema import key_versions
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)


def counter(n: Node) -> UsageCounter:
    """The node's usage counter (its one background task of that type)."""
    found = [t for t in n.services.background if isinstance(t, UsageCounter)]
    assert len(found) == 1
    return found[0]


def set_key(n: Node, ref: str, **values: Any) -> Key:
    """Set key columns in the store (as an operator's PATCH would) and drop the cache."""
    svc = n.services
    key = svc.keys.get(n.ctx(), ref)
    with svc.deps.transaction() as conn:
        svc.deps.keys.update(conn, key.id, **values)
    svc.lookup.forget(key)
    return svc.keys.get(n.ctx(), ref)


def set_version(n: Node, ref: str, version: int, **values: Any) -> None:
    svc = n.services
    key = svc.keys.get(n.ctx(), ref)
    with svc.deps.transaction() as conn:
        svc.deps.keys.update_version(conn, key.id, version, **values)
    svc.lookup.forget(key)


def stored_count(n: Node, key_id: str, version: int = 1) -> int:
    with n.services.deps.reading() as conn:
        value = conn.execute(select(key_versions.c.protect_count).where(
            key_versions.c.key_id == key_id, key_versions.c.version == version)).scalar_one()
    return int(value)
