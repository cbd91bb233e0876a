"""Repository of import tokens (bring your own key, service/key_import.py).

A row is keyed by the SHA-256 hex of the token (the token itself is never stored) and holds
the token's RSA-4096 wrapping key: its private key only wrapped under the namespace KEK
(custody), its public key as SPKI PEM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from keykeeper.store.convert import utc
from keykeeper.store.schema import import_tokens

__all__ = ["ImportToken", "ImportTokenRepository"]


@dataclass(frozen=True, slots=True)
class ImportToken:
    id: str                      # SHA-256 hex of the token
    key_id: str
    wrapping_algorithm: str
    wrapped_private_key: bytes = b""
    public_key_pem: str = ""
    created_at: datetime | None = None
    expires_at: datetime | None = None
    used_at: datetime | None = None

    def __repr__(self) -> str:
        return f"ImportToken(key_id={self.key_id!r}, used={self.used_at is not None})"


class ImportTokenRepository:
    def insert(self, conn: Connection, token: ImportToken) -> None:
        conn.execute(insert(import_tokens).values(
            id=token.id, key_id=token.key_id, wrapping_algorithm=token.wrapping_algorithm,
            wrapped_private_key=token.wrapped_private_key, public_key=token.public_key_pem,
            created_at=token.created_at, expires_at=token.expires_at, used_at=None))

    def get(self, conn: Connection, token_id: str, *,
            for_update: bool = False) -> ImportToken | None:
        q = select(import_tokens).where(import_tokens.c.id == token_id)
        if for_update:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            return None
        return ImportToken(id=row.id, key_id=row.key_id,
                           wrapping_algorithm=row.wrapping_algorithm,
                           wrapped_private_key=bytes(row.wrapped_private_key),
                           public_key_pem=row.public_key, created_at=utc(row.created_at),
                           expires_at=utc(row.expires_at), used_at=utc(row.used_at))

    def mark_used(self, conn: Connection, token_id: str, at: datetime) -> bool:
        """Mark the token used (once: False if it already was). Its wrapped private key is
        erased at the same time: a used token can never unwrap again."""
        result = conn.execute(update(import_tokens)
                              .where(import_tokens.c.id == token_id,
                                     import_tokens.c.used_at.is_(None))
                              .values(used_at=at, wrapped_private_key=b""))
        return result.rowcount == 1

    def delete_expired(self, conn: Connection, before: datetime) -> int:
        """Delete tokens that expired before ``before``; returns how many."""
        result = conn.execute(delete(import_tokens).where(import_tokens.c.expires_at < before))
        return int(result.rowcount)
