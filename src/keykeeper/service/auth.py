"""Bearer-token authentication.

Tokens are 256-bit random values (``kk.`` + base64url), shown once and stored only
as SHA-256 hashes. A presented token is hashed, looked up by hash, and the stored
hash compared with ``hmac.compare_digest``; results are cached for a short TTL so
the hot path costs no storage read, and a revoked token stops working within
that TTL (1 s) everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from keykeeper.custody.cache import TTLCache
from keykeeper.errors import Unauthenticated
from keykeeper.service.context import Principal
from keykeeper.store.system import SystemRepository

__all__ = ["TokenAuthenticator", "hash_token", "new_token"]

TOKEN_PREFIX = "kk."  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenAuthenticator:
    def __init__(self, engine: Engine, repo: SystemRepository,
                 clock: Callable[[], datetime], cache_ttl: float = 1.0) -> None:
        self._engine = engine
        self._repo = repo
        self._clock = clock
        self._cache: TTLCache[str, Principal] = TTLCache(10_000, cache_ttl)

    def authenticate(self, token: str | None) -> Principal:
        """Return the token's principal; :class:`Unauthenticated` if missing, unknown,
        expired or revoked (one message for all, so nothing is learnt by probing)."""
        if not token or len(token) > 512:
            raise Unauthenticated("missing or invalid token")
        digest = hash_token(token)
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        with self._engine.connect() as conn:
            row = self._repo.get_token(conn, digest)
        if (row is None or not hmac.compare_digest(row.token_hash, digest)
                or row.revoked_at is not None
                or (row.expires_at is not None and row.expires_at <= self._clock())):
            raise Unauthenticated("missing or invalid token")
        principal = Principal(name=row.principal, policies=row.policies)
        self._cache.put(digest, principal)
        return principal
