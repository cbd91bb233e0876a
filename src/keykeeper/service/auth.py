"""Bearer-token authentication.

A token belongs to a principal (a row of ``principals``), or to ``root``, the
break-glass principal of the init token. Tokens are 256-bit random values (``kk.`` +
base64url), shown once and stored only as SHA-256 hashes. A presented token is
hashed, looked up by hash, and the stored hash compared with ``hmac.compare_digest``;
results are cached for a short TTL so the hot path costs no storage read, and a
revoked token or a changed principal takes effect within that TTL (1 s) everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from keykeeper.authz.model import ROOT, Principal
from keykeeper.custody.cache import TTLCache
from keykeeper.errors import Unauthenticated
from keykeeper.service.cert_auth import CertificateAuthenticator
from keykeeper.service.deps import Deps

__all__ = ["TokenAuthenticator", "hash_token", "new_token"]

TOKEN_PREFIX = "kk."  # noqa: S105 - a public prefix, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenAuthenticator:
    def __init__(self, deps: Deps, cache_ttl: float = 1.0) -> None:
        self._d = deps
        # Known and unknown tokens alike are remembered for ``cache_ttl`` seconds, so neither
        # a busy client nor a flood of bad tokens reads the store on every request.
        self._good: TTLCache[str, Principal] = TTLCache(20_000, cache_ttl)
        self._bad: TTLCache[str, bool] = TTLCache(20_000, cache_ttl)
        self._certs = CertificateAuthenticator(deps, cache_ttl)

    @staticmethod
    def _digest(token: str | None) -> str:
        if not token or len(token) > 512:
            raise Unauthenticated("missing or invalid token")
        return hash_token(token)

    def cached(self, token: str | None) -> Principal | None:
        """The principal when the cache knows the answer (no I/O: safe on the event loop);
        None when :meth:`authenticate` must read the store. Raises Unauthenticated for a
        malformed token or one recently found invalid."""
        digest = self._digest(token)
        if self._bad.get(digest):
            raise Unauthenticated("missing or invalid token")
        return self._good.get(digest)

    def authenticate(self, token: str | None) -> Principal:
        """Return the token's principal; :class:`Unauthenticated` if missing, unknown,
        expired or revoked (one message for all, so nothing is learnt by probing).
        Reads the store on a cache miss: call it off the event loop."""
        found = self.cached(token)
        if found is not None:
            return found
        digest = self._digest(token)
        with self._d.reading() as conn:
            row = self._d.identity.get_token_by_hash(conn, digest)
            principal: Principal | None = None
            if row is not None and row.principal == ROOT:
                principal = Principal(name=ROOT, kind="person")
            elif row is not None:
                principal = self._d.identity.get_principal(conn, row.principal)
        if (row is None or principal is None or principal.disabled
                or not hmac.compare_digest(row.token_hash, digest)
                or row.revoked_at is not None
                or (row.expires_at is not None and row.expires_at <= self._d.clock())):
            self._bad.put(digest, True)
            raise Unauthenticated("missing or invalid token")
        self._good.put(digest, principal)
        return principal

    def forget(self) -> None:
        """Drop every cached answer (after a change to tokens or principals made here)."""
        self._good.clear()
        self._bad.clear()
        self._certs.forget()

    def cached_certificate(self, cert_der: bytes) -> Principal | None:
        """The principal of a client certificate when the cache knows it (no I/O: safe on
        the event loop); None when :meth:`authenticate_certificate` must read the store."""
        return self._certs.cached(cert_der)

    def authenticate_certificate(self, cert_der: bytes) -> Principal:
        """The principal a (chain-verified) client certificate maps to, by its subject DN
        or a subjectAltName (service/cert_auth.py); Unauthenticated if none. Reads the
        store on a cache miss: call it off the event loop."""
        return self._certs.authenticate(cert_der)
