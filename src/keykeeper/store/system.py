"""Repository of system configuration (the sealed root), namespaces and tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from keykeeper.errors import AlreadyExists
from keykeeper.store.convert import utc
from keykeeper.store.schema import namespaces, system_config, tokens

__all__ = ["NamespaceRow", "SystemRepository", "TokenRow", "namespace_row"]


@dataclass(frozen=True, slots=True)
class NamespaceRow:
    name: str
    wrapped_kek: bytes               # empty once the namespace is deleted (crypto-erased)
    allow_legacy_rsa_2048: bool
    created_at: datetime
    description: str = ""
    rate_limit: float | None = None  # requests per second for all callers together
    created_by: str = ""
    deleted_at: datetime | None = None
    # Lifecycle defaults for keys created here, seconds (0003); None: none / SP 800-57's.
    rotation_period: int | None = None
    originator_usage_period: int | None = None
    recipient_usage_period: int | None = None


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_hash: str
    principal: str
    policies: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def namespace_row(r: Any) -> NamespaceRow:
    created = utc(r.created_at)
    assert created is not None
    return NamespaceRow(name=r.name, wrapped_kek=bytes(r.wrapped_kek),
                        allow_legacy_rsa_2048=bool(r.allow_legacy_rsa_2048),
                        created_at=created, description=r.description,
                        rate_limit=None if r.rate_limit is None else float(r.rate_limit),
                        created_by=r.created_by, deleted_at=utc(r.deleted_at),
                        rotation_period=r.rotation_period,
                        originator_usage_period=r.originator_usage_period,
                        recipient_usage_period=r.recipient_usage_period)


_CONFIG_VALUE = select(system_config.c.value).where(system_config.c.name == bindparam("name"))
_NAMESPACE = select(namespaces).where(namespaces.c.name == bindparam("name"))
_LIVE_NAMESPACE = _NAMESPACE.where(namespaces.c.deleted_at.is_(None))


class SystemRepository:
    def get_config(self, conn: Connection, name: str) -> Any | None:
        value = conn.execute(_CONFIG_VALUE, {"name": name}).scalar_one_or_none()
        return None if value is None else json.loads(value)

    def insert_config(self, conn: Connection, name: str, value: Any) -> None:
        try:
            conn.execute(insert(system_config).values(name=name, value=json.dumps(value)))
        except IntegrityError:
            raise AlreadyExists(f"configuration '{name}' already exists") from None

    def set_config(self, conn: Connection, name: str, value: Any) -> None:
        """Insert or replace one configuration value."""
        updated = conn.execute(update(system_config).where(system_config.c.name == name)
                               .values(value=json.dumps(value)))
        if updated.rowcount == 0:
            conn.execute(insert(system_config).values(name=name, value=json.dumps(value)))

    def insert_namespace(self, conn: Connection, row: NamespaceRow) -> None:
        try:
            conn.execute(insert(namespaces).values(
                name=row.name, wrapped_kek=row.wrapped_kek,
                allow_legacy_rsa_2048=row.allow_legacy_rsa_2048, created_at=row.created_at,
                description=row.description, rate_limit=row.rate_limit,
                created_by=row.created_by))
        except IntegrityError:
            raise AlreadyExists(f"namespace '{row.name}' already exists") from None

    def get_namespace_limit(self, conn: Connection, name: str) -> float | None:
        """The namespace's rate limit (requests per second), None if unset or unknown."""
        value = conn.execute(select(namespaces.c.rate_limit)
                             .where(namespaces.c.name == name)).scalar_one_or_none()
        return None if value is None else float(value)

    def get_namespace(self, conn: Connection, name: str, *,
                      include_deleted: bool = False) -> NamespaceRow | None:
        """The namespace; a deleted (crypto-erased) one only with ``include_deleted``."""
        q = _NAMESPACE if include_deleted else _LIVE_NAMESPACE
        r = conn.execute(q, {"name": name}).first()
        return None if r is None else namespace_row(r)

    def insert_token(self, conn: Connection, token_hash: str, principal: str,
                     policies: tuple[str, ...], created_at: datetime,
                     expires_at: datetime | None = None) -> None:
        conn.execute(insert(tokens).values(
            token_hash=token_hash, principal=principal, policies=json.dumps(list(policies)),
            created_at=created_at, expires_at=expires_at))

    def get_token(self, conn: Connection, token_hash: str) -> TokenRow | None:
        r = conn.execute(select(tokens).where(tokens.c.token_hash == token_hash)).first()
        if r is None:
            return None
        created = utc(r.created_at)
        assert created is not None
        return TokenRow(token_hash=r.token_hash, principal=r.principal,
                        policies=tuple(json.loads(r.policies)), created_at=created,
                        expires_at=utc(r.expires_at), revoked_at=utc(r.revoked_at))

    def revoke_token(self, conn: Connection, token_hash: str, at: datetime) -> None:
        conn.execute(update(tokens).where(tokens.c.token_hash == token_hash)
                     .values(revoked_at=at))
