"""The per-request context every interface builds and the service layer fills in."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
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
    # The request's encryption context (single, not batch), audited only as HMACs:
    encryption_context: Mapping[str, str] | None = field(default=None, repr=False)
    # The approval request this call concerns (service/approvals.py), for the audit record:
    # the request a gated call just filed (202), the one voted on, or -- on the context an
    # approved request runs with, as its requester -- the one being executed (the gate lets
    # that execution through only while the approvals service is running it):
    approval_id: str | None = None
    # A rewrap into another key: that key's id (the record's key is the source).
    destination_key_id: str | None = None
    # Key import and export (issue 6 §3, §4): SHA-256 hex of the wrapping key's SPKI DER
    # (or of a keykeeper wrap key's "id:version"); never material.
    wrapping_key_fingerprint: str | None = None
    # On the approving call that ran an approved request (the M-th approval): how the
    # execution ended, "executed" or "failed:<code>", and the requester it ran as:
    execution: str | None = None
    on_behalf_of: str | None = None

    @property
    def actor(self) -> str:
        """Who a recorded change is attributed to: the principal, else ``system``."""
        return self.principal.name if self.principal else "system"
    # True when the caller's allow_compromised flag let a compromised key or version process
    # (decrypt, verify, ...): audited; None otherwise (the flag unused or not needed).
    allow_compromised: bool | None = None
