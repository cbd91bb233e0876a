"""Bearer tokens: create, list, revoke, renew, look up oneself, and retire the root token.

A token is 256 random bits (``kk.`` + base64url, service/auth.py), shown once and stored
only as its SHA-256 hash, with a public *accessor* (``acc-`` + 32 hex digits) that names it
for listing, renewing and revoking without the secret (as Vault's token accessors).

* ``ttl`` is seconds (or ``"30d"``): default 30 days, at most the server's maximum
  (``KEYKEEPER_MAX_TOKEN_TTL``, default 365 days); renewing moves the expiry to now + ttl,
  never past created_at + maximum, and only for an unexpired, unrevoked token;
* a principal lists, renews and revokes its own tokens and looks itself up without any
  permission; doing so for another principal needs ``token.list``, ``token.renew`` or
  ``token.revoke``; creating a token needs ``token.create``;
* root tokens (the break-glass credential made at init) never expire and are retired with
  :meth:`TokenAdmin.revoke_root` (``token.revoke_root``), allowed only once an enabled
  principal holds ``security-officer`` (NIST SP 800-57 Pt 2 Rev. 1 §6.1: no standing
  all-powerful account);
* a change takes effect in this process at once and on every node within 1 s.

Errors: PermissionDenied, InvalidArgument, NotFound, FailedPrecondition, Unauthenticated.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from keykeeper.authz.model import ROOT
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from keykeeper.service.auth import TokenAuthenticator, hash_token, new_token
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_base import OFFICER, IdentityBase
from keykeeper.service.identity_rules import check_display_name, check_ttl
from keykeeper.service.identity_views import rfc3339, token_state
from keykeeper.store.identity import TokenInfo

__all__ = ["DEFAULT_TTL", "MAX_TTL", "NewToken", "TokenAdmin", "new_accessor"]

DEFAULT_TTL = 30 * 86400
MAX_TTL = 365 * 86400


def new_accessor() -> str:
    return "acc-" + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``token`` is the secret, shown this once."""

    token: str
    info: TokenInfo

    def __repr__(self) -> str:
        return f"NewToken(token=<hidden>, accessor={self.info.accessor!r})"


class TokenAdmin(IdentityBase):
    def __init__(self, deps: Deps, authz: Authorizer, auth: TokenAuthenticator, *,
                 max_ttl: int = MAX_TTL, default_ttl: int = DEFAULT_TTL) -> None:
        super().__init__(deps, authz, auth)
        if max_ttl < 60:
            raise InvalidArgument("the maximum token TTL must be at least 60 seconds")
        self.max_ttl = max_ttl
        self.default_ttl = min(default_ttl, max_ttl)

    # -- helpers --------------------------------------------------------------------------
    def _token(self, accessor: str) -> TokenInfo:
        with self._d.reading() as conn:
            t = (self._d.identity.get_token_by_accessor(conn, accessor)
                 if isinstance(accessor, str) and accessor.startswith("acc-")
                 and len(accessor) <= 40 else None)
        if t is None:
            raise NotFound(f"token '{accessor}' not found")
        return t

    def _self_or(self, ctx: RequestContext, principal: str, operation: str) -> None:
        """Acting on one's own tokens needs no permission; on another's, ``operation``."""
        if ctx.principal is None:
            raise Unauthenticated("missing or invalid token")
        if ctx.principal.name != principal:
            self._require(ctx, operation)

    # -- operations -----------------------------------------------------------------------
    def create(self, ctx: RequestContext, *, principal: str, ttl: int | str | None = None,
               display_name: str | None = None) -> NewToken:
        """A new token for ``principal`` (enabled, stored). ``ttl`` in seconds or "30d"."""
        actor = self._require(ctx, "token.create")
        seconds = check_ttl(ttl, self.default_ttl, self.max_ttl)
        label = check_display_name(display_name)
        if principal == ROOT:
            raise InvalidArgument("root tokens are made only at init (break-glass)")
        token, now = new_token(), self._d.clock()
        info = TokenInfo(accessor=new_accessor(), token_hash=hash_token(token),
                         principal=principal, display_name=label, created_by=actor.name,
                         created_at=now, expires_at=now + timedelta(seconds=seconds),
                         revoked_at=None, ttl=seconds)
        with self._d.transaction() as conn:
            who = self._d.identity.get_principal(conn, principal)
            if who is None:
                raise NotFound(f"principal '{principal}' not found")
            if who.disabled:
                raise FailedPrecondition(f"principal '{principal}' is disabled")
            self._d.identity.insert_token(
                conn, token_hash=info.token_hash, accessor=info.accessor,
                principal=principal, display_name=label, created_by=actor.name,
                created_at=now, expires_at=info.expires_at, ttl=seconds)
        return NewToken(token=token, info=info)

    def list(self, ctx: RequestContext, *, principal: str | None = None) -> list[TokenInfo]:
        """Tokens of ``principal`` (default: the caller), newest last, without secrets."""
        who = principal or (ctx.principal.name if ctx.principal else "")
        self._self_or(ctx, who, "token.list")
        with self._d.reading() as conn:
            return self._d.identity.list_tokens(conn, who)

    def revoke(self, ctx: RequestContext, accessor: str) -> TokenInfo:
        """Revoke one token (idempotent). A root token is retired only through
        :meth:`revoke_root`'s rule: ``token.revoke_root`` and a security officer in place."""
        t = self._token(accessor)
        if t.principal == ROOT:
            self._require(ctx, "token.revoke_root")
        else:
            self._self_or(ctx, t.principal, "token.revoke")
        now = self._d.clock()
        with self._d.transaction() as conn:
            if t.principal == ROOT:
                self._check_officer_exists(conn)
            self._d.identity.revoke_token(conn, t.token_hash, now)
            after = self._d.identity.get_token_by_accessor(conn, accessor)
        self._changed()
        assert after is not None
        return after

    def renew(self, ctx: RequestContext, accessor: str) -> TokenInfo:
        """Move the expiry to now + ttl, capped at created_at + the maximum TTL."""
        t = self._token(accessor)
        self._self_or(ctx, t.principal, "token.renew")
        now = self._d.clock()
        with self._d.transaction() as conn:
            current = self._d.identity.get_token_by_accessor(conn, accessor)
            assert current is not None
            state = token_state(current, now)
            if state != "active":
                raise FailedPrecondition(f"token '{accessor}' is {state}; create a new one")
            if current.ttl is None or current.expires_at is None:
                raise FailedPrecondition(f"token '{accessor}' does not expire")
            limit = current.created_at + timedelta(seconds=self.max_ttl)
            if current.expires_at >= limit:
                raise FailedPrecondition(
                    f"token '{accessor}' reached its maximum lifetime (until "
                    f"{rfc3339(limit)}); create a new one")
            expires = max(current.expires_at, min(now + timedelta(seconds=current.ttl), limit))
            self._d.identity.set_token_expiry(conn, current.token_hash, expires)
            after = self._d.identity.get_token_by_accessor(conn, accessor)
        assert after is not None
        return after

    def lookup_self(self, ctx: RequestContext) -> dict[str, Any]:
        """Who am I: principal, kind, roles, metadata, and the token used for this call
        (accessor, display_name, expires_at, ttl; absent for a certificate)."""
        if ctx.principal is None:
            raise Unauthenticated("missing or invalid token")
        p = ctx.principal
        out: dict[str, Any] = {"principal": p.name, "kind": p.kind, "roles": list(p.roles),
                               "metadata": dict(p.metadata), "accessor": None,
                               "display_name": None, "expires_at": None, "ttl": None,
                               "created_at": None}
        if ctx.token:
            with self._d.reading() as conn:
                t = self._d.identity.get_token_by_hash(conn, hash_token(ctx.token))
            if t is not None:
                out.update(accessor=t.accessor, display_name=t.display_name,
                           expires_at=rfc3339(t.expires_at), ttl=t.ttl,
                           created_at=rfc3339(t.created_at))
        return out

    def _check_officer_exists(self, conn: Any) -> None:
        officers = [p for p in self._d.identity.list_principals(conn, role=OFFICER)
                    if not p.disabled]
        if not officers:
            raise FailedPrecondition(
                "no enabled principal holds the security-officer role: create one (and a "
                "token for it) before revoking the root token, or nobody could administer "
                "access")

    def revoke_root(self, ctx: RequestContext) -> int:
        """Revoke every root token (the break-glass credential); answers how many."""
        self._require(ctx, "token.revoke_root")
        now = self._d.clock()
        with self._d.transaction() as conn:
            self._check_officer_exists(conn)
            count = self._d.identity.revoke_tokens_of(conn, ROOT, now)
        self._changed()
        return count
