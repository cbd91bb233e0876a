"""The per-request context every interface builds and the service layer fills in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

__all__ = ["Principal", "RequestContext"]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    policies: tuple[str, ...] = ()


@dataclass(slots=True)
class RequestContext:
    """Who calls, from where, over which interface; the service records the key touched."""

    interface: str = "rest"
    source: str | None = None
    token: str | None = field(default=None, repr=False)
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))
    principal: Principal | None = None
    # Filled in by the service for the audit record:
    namespace: str | None = None
    key_id: str | None = None
    key_version: int | None = None
    items: int | None = None
    failed_items: int | None = None
