"""Repository of system configuration (the sealed root), namespaces and tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from keykeeper.errors import AlreadyExists
from keykeeper.store.convert import utc
from keykeeper.store.schema import namespaces, system_config, tokens

__all__ = ["NamespaceRow", "SystemRepository", "TokenRow"]


@dataclass(frozen=True, slots=True)
class NamespaceRow:
    name: str
    wrapped_kek: bytes
    allow_legacy_rsa_2048: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRow:
    token_hash: str
    principal: str
    policies: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class SystemRepository:
    def get_config(self, conn: Connection, name: str) -> Any | None:
        value = conn.execute(select(system_config.c.value)
                             .where(system_config.c.name == name)).scalar_one_or_none()
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
                allow_legacy_rsa_2048=row.allow_legacy_rsa_2048, created_at=row.created_at))
        except IntegrityError:
            raise AlreadyExists(f"namespace '{row.name}' already exists") from None

    def get_namespace_limit(self, conn: Connection, name: str) -> float | None:
        """The namespace's rate limit (requests per second), None if unset or unknown."""
        value = conn.execute(select(namespaces.c.rate_limit)
                             .where(namespaces.c.name == name)).scalar_one_or_none()
        return None if value is None else float(value)

    def get_namespace(self, conn: Connection, name: str) -> NamespaceRow | None:
        r = conn.execute(select(namespaces).where(namespaces.c.name == name)).first()
        if r is None:
            return None
        created = utc(r.created_at)
        assert created is not None
        return NamespaceRow(name=r.name, wrapped_kek=bytes(r.wrapped_kek),
                            allow_legacy_rsa_2048=bool(r.allow_legacy_rsa_2048),
                            created_at=created)

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
