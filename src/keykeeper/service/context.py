"""The per-request context every interface builds and the service layer fills in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from keykeeper.authz.model import Principal

__all__ = ["Principal", "RequestContext"]


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
    # Set by the approvals service when it runs an approved request as its requester, so the
    # dual-control gate lets that one execution through:
    approval_id: str | None = None
