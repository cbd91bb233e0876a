"""Bearer tokens: create, list, revoke, renew, look up oneself, and retire the root token.

A token is 256 random bits (``kk.`` + base64url, service/auth.py), shown once and stored
only as its SHA-256 hash, with a public *accessor* (``acc-`` + 32 hex digits) that names it
for listing, renewing and revoking without the secret (as Vault's token accessors).

* ``ttl`` is seconds (or ``"30d"``): at least 60 s, default 30 days, at most the server's
  maximum (``KEYKEEPER_MAX_TOKEN_TTL``, default 365 days); renewing moves the expiry to
  now + ttl, capped at created_at + maximum (failed_precondition only when that allows no
  extension at all), and only for an unexpired, unrevoked token;
* a principal creates, lists, renews and revokes its own tokens and looks itself up
  without any permission; doing so for another principal needs ``token.create``,
  ``token.list``, ``token.renew`` or ``token.revoke``;
* a token for another principal lets its holder act as that principal, so creating one
  (unless root does) passes the dual-control gate, with the principal and its roles in the
  summary; once approved it runs as the requester, and the secret is kept wrapped in the
  approval request until the requester claims it, once (service/approvals.py);
* root tokens (the break-glass credential made at init) never expire and are retired with
  :meth:`TokenAdmin.revoke_root` (``token.revoke_root``), allowed only once an enabled
  principal holds ``security-officer`` and every rule of the approval policy has as many
  principals able to approve as it requires (NIST SP 800-57 Pt 2 Rev. 1 §6.1: no standing
  all-powerful account, and no lock-out either);
* a change takes effect in this process at once and on every node within 1 s.

Errors: PermissionDenied, InvalidArgument, NotFound, FailedPrecondition, Unauthenticated,
ApprovalRequired.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from keykeeper.authz.model import ROOT, Principal, check_principal_name
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from keykeeper.service.auth import TokenAuthenticator, hash_token, new_token
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_base import OFFICER, IdentityBase
from keykeeper.service.identity_rules import MIN_TOKEN_TTL, check_display_name, check_ttl
from keykeeper.service.identity_views import principal_fingerprint, rfc3339, token_state
from keykeeper.store.identity import TokenInfo

__all__ = ["DEFAULT_TTL", "MAX_TTL", "NewToken", "TokenAdmin", "new_accessor"]

DEFAULT_TTL = 30 * 86400
MAX_TTL = 365 * 86400


def new_accessor() -> str:
    return "acc-" + secrets.token_hex(16)


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


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
        if max_ttl < MIN_TOKEN_TTL:
            raise InvalidArgument(f"the maximum token TTL must be at least {MIN_TOKEN_TTL} "
                                  "seconds")
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
               display_name: str | None = None,
               approved_roles: Iterable[str] | None = None,
               expect: Mapping[str, Any] | None = None) -> NewToken:
        """A new token for ``principal`` (enabled, stored). ``ttl`` in seconds or "30d".

        For oneself: no permission needed. For another principal: ``token.create`` and the
        dual-control gate (the caller then gets ApprovalRequired). ``approved_roles`` is
        set when an approved request runs: the roles the approvers were shown, which the
        principal must still hold."""
        if ctx.principal is None:
            raise Unauthenticated("missing or invalid token")
        check_principal_name(principal, "principal")
        own = not ctx.principal.is_root and ctx.principal.name == principal
        actor = ctx.principal if own else self._require(ctx, "token.create")
        seconds = check_ttl(ttl, self.default_ttl, self.max_ttl)
        label = check_display_name(display_name)
        if principal == ROOT:
            raise InvalidArgument("root tokens are made only at init (break-glass)")
        if not own:
            # A token acts as its principal: whoever gets it may do what that principal
            # may. Approvers see who, with which roles, for how long.
            with self._d.reading() as conn:
                who = self._enabled(conn, principal)
            roles = ", ".join(who.roles) or "(none)"
            self._gate(ctx, "token.create", {
                "principal": principal, "ttl": seconds, "display_name": label,
                "roles": list(who.roles), "expect": principal_fingerprint(who)},
                summary=f"create a token for principal '{principal}', acting with its roles "
                f"{roles}, valid for {_duration(seconds)}"
                + (f" ('{label}')" if label else ""))
        token, now = new_token(), self._d.clock()
        info = TokenInfo(accessor=new_accessor(), token_hash=hash_token(token),
                         principal=principal, display_name=label, created_by=actor.name,
                         created_at=now, expires_at=now + timedelta(seconds=seconds),
                         revoked_at=None, ttl=seconds)
        with self._d.transaction() as conn:
            who = self._enabled(conn, principal)
            if approved_roles is not None and set(approved_roles) != set(who.roles):
                raise FailedPrecondition(
                    f"the roles of principal '{principal}' changed since the request (now "
                    f"{', '.join(who.roles) or '(none)'}); request a new token")
            if expect is not None and principal_fingerprint(who) != dict(expect):
                raise FailedPrecondition(
                    f"principal '{principal}' changed since the request (its metadata or "
                    "certificate subjects, or it was created again); request a new token")
            self._d.identity.insert_token(
                conn, token_hash=info.token_hash, accessor=info.accessor,
                principal=principal, display_name=label, created_by=actor.name,
                created_at=now, expires_at=info.expires_at, ttl=seconds)
        return NewToken(token=token, info=info)

    def check_claimable(self, ctx: RequestContext, arguments: Mapping[str, Any],
                        result: Mapping[str, Any]) -> None:
        """Before an approved token is handed over: its principal must still be the one the
        approvers saw. Otherwise the token is revoked at once and FailedPrecondition
        raised (the secret is never handed over)."""
        expect = arguments.get("expect")
        with self._d.reading() as conn:
            who = self._d.identity.get_principal(conn, str(arguments["principal"]))
        if (who is not None and not who.disabled
                and set(arguments.get("roles", ())) == set(who.roles)
                and (expect is None or principal_fingerprint(who) == dict(expect))):
            return
        info = None
        with self._d.reading() as conn:
            info = self._d.identity.get_token_by_accessor(conn, str(result.get("accessor")))
        if info is not None:
            with self._d.transaction() as conn:
                self._d.identity.revoke_token(conn, info.token_hash, self._d.clock())
            self._auth.forget()
        raise FailedPrecondition(
            f"principal '{arguments['principal']}' changed since the token was approved "
            "(roles, metadata, certificate subjects, or it was disabled or created again): "
            "the token is revoked; request a new one")

    def _enabled(self, conn: Any, principal: str) -> Principal:
        who = self._d.identity.get_principal(conn, principal)
        if who is None:
            raise NotFound(f"principal '{principal}' not found")
        if who.disabled:
            raise FailedPrecondition(f"principal '{principal}' is disabled")
        return who

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
                self._check_root_can_go(conn)
            elif ctx.principal is None or ctx.principal.name != t.principal:
                # Revoking another's token must not strand administration either.
                self._keep_administrable(conn, revoking=t.token_hash,
                                         what=f"revoking this token of '{t.principal}'")
            self._d.identity.revoke_token(conn, t.token_hash, now)
            after = self._d.identity.get_token_by_accessor(conn, accessor)
        self._changed()
        assert after is not None
        return after

    def renew(self, ctx: RequestContext, accessor: str) -> TokenInfo:
        """Move the expiry to now + ttl, capped at created_at + the maximum TTL (the answer
        shows the expiry reached); FailedPrecondition when the cap allows no extension."""
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
            if current.expires_at >= limit:  # no extension is possible any more
                raise FailedPrecondition(
                    f"token '{accessor}' reached its maximum lifetime (until "
                    f"{rfc3339(limit)}); create a new one")
            # Capped at the maximum lifetime; never earlier than the current expiry.
            expires = max(current.expires_at,
                          min(now + timedelta(seconds=current.ttl), limit))
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

    def _check_root_can_go(self, conn: Any) -> None:
        """Without the root token, someone must be able to administer access (an enabled
        security officer) and every dual-controlled operation must be able to run (each
        rule of the approval policy has at least M principals able to approve)."""
        officers = self._reachable(conn, [
            p for p in self._d.identity.list_principals(conn, role=OFFICER) if not p.disabled])
        if not officers:
            raise FailedPrecondition(
                "no enabled principal with a live token (or a certificate subject) holds the "
                "security-officer role: create one and a token for it before revoking the "
                "root token, or nobody could administer access")
        self._check_approvers_suffice(
            conn, "appoint them (and tokens for them) before revoking the root token, or "
            "nothing under that rule could run again")

    def revoke_root(self, ctx: RequestContext) -> int:
        """Revoke every root token (the break-glass credential); answers how many."""
        self._require(ctx, "token.revoke_root")
        now = self._d.clock()
        with self._d.transaction() as conn:
            self._check_root_can_go(conn)
            count = self._d.identity.revoke_tokens_of(conn, ROOT, now)
        self._changed()
        return count
