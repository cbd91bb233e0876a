"""The service layer as one object: every interface calls this, and only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from keykeeper.service.approvals import Approvals
from keykeeper.service.audit import Auditor
from keykeeper.service.auth import TokenAuthenticator
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.deps import Deps
from keykeeper.service.identity import IdentityService
from keykeeper.service.keys import KeyAdmin
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.namespaces import NamespaceAdmin
from keykeeper.service.operations import Crypto
from keykeeper.service.ratelimit import RateLimiter
from keykeeper.service.system import SystemService
from keykeeper.service.tokens import MAX_TTL as MAX_TOKEN_TTL

__all__ = ["Background", "Services", "build_services"]


class Background(Protocol):
    """A per-node background task (usage counter flush, monitoring, ...), started when the
    server starts and stopped, flushing what it holds, when it stops."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Services:
    deps: Deps
    system: SystemService
    auth: TokenAuthenticator
    keys: KeyAdmin
    crypto: Crypto
    audit: Auditor
    lookup: KeyLookup
    authz: Authorizer
    limits: RateLimiter
    approvals: Approvals
    namespaces: NamespaceAdmin
    identity: IdentityService
    # Per-node background tasks; the server starts them after start-up and stops them, in
    # reverse order, before the audit trail closes (config.py).
    background: list[Background] = field(default_factory=list)

    def start_background(self) -> None:
        for task in self.background:
            task.start()

    def stop_background(self) -> None:
        for task in reversed(self.background):
            task.stop()


def build_services(deps: Deps, auditor: Auditor, *, metadata_ttl: float = 1.0,
                   rate_limit: float | None = None,
                   max_token_ttl: int = MAX_TOKEN_TTL) -> Services:
    lookup = KeyLookup(deps, ttl=metadata_ttl)
    authz = Authorizer(deps, ttl=metadata_ttl)
    limits = RateLimiter(deps, rate_limit, settings_ttl=metadata_ttl)
    approvals = Approvals(deps, authz)
    namespaces = NamespaceAdmin(deps, lookup, authz, approvals)
    approvals.register("namespace.delete", namespaces.execute_delete)
    approvals.register("approval_policy.update", approvals.execute_policy_update)
    auth = TokenAuthenticator(deps)
    identity = IdentityService(deps, authz, auth, gate=approvals.gate,
                               max_token_ttl=max_token_ttl)
    identity.register_executors(approvals.register)
    approvals.register_claim_check("token.create", identity.tokens.check_claimable)
    keys = KeyAdmin(deps, lookup, authz, limits)
    keys.gate = approvals.gate
    keys.register_executors(approvals.register)
    return Services(
        deps=deps, system=SystemService(deps),
        auth=auth,
        keys=keys, crypto=Crypto(lookup, authz, limits),
        audit=auditor, lookup=lookup, authz=authz, limits=limits,
        approvals=approvals, namespaces=namespaces, identity=identity,
    )
