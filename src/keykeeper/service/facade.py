"""The service layer as one object: every interface calls this, and only this."""

from __future__ import annotations

from dataclasses import dataclass

from keykeeper.service.audit import Auditor
from keykeeper.service.auth import TokenAuthenticator
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.deps import Deps
from keykeeper.service.keys import KeyAdmin
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.operations import Crypto
from keykeeper.service.ratelimit import RateLimiter
from keykeeper.service.system import SystemService

__all__ = ["Services", "build_services"]


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


def build_services(deps: Deps, auditor: Auditor, *, metadata_ttl: float = 1.0,
                   rate_limit: float | None = None) -> Services:
    lookup = KeyLookup(deps, ttl=metadata_ttl)
    authz = Authorizer(deps, ttl=metadata_ttl)
    limits = RateLimiter(deps, rate_limit, settings_ttl=metadata_ttl)
    return Services(
        deps=deps, system=SystemService(deps),
        auth=TokenAuthenticator(deps),
        keys=KeyAdmin(deps, lookup, authz, limits), crypto=Crypto(lookup, authz, limits),
        audit=auditor, lookup=lookup, authz=authz, limits=limits,
    )
