"""Request and response structs of the compromise-response and destruction-receipt routes
(rest/compromise_routes.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import Struct

__all__ = [
    "BulkRevokeRequest",
    "BulkRevokeResponse",
    "CompromiseReport",
    "CompromiseVersionRequest",
    "CompromisedVersion",
    "ReceiptKey",
    "ReceiptList",
    "RevokeError",
    "UsageByPrincipal",
    "UsageTotals",
]


class CompromiseVersionRequest(Struct, forbid_unknown_fields=True):
    reason: str
    # When it happened (RFC 3339, not in the future; KMIP Compromise Occurrence Date).
    compromise_time: datetime | None = None


class CompromisedVersion(Struct):
    key_id: str
    key: str                        # namespace:name
    version: int
    state: str
    compromised_at: str | None      # when it happened (RFC 3339)
    compromise_reason: str | None


class ReceiptList(Struct):
    # Signed receipts, oldest first; format in docs/destruction-receipts.md.
    receipts: list[dict[str, Any]]


class ReceiptKey(Struct):
    public_key: str        # PEM, SubjectPublicKeyInfo, Ed25519
    algorithm: str = "Ed25519"


class UsageByPrincipal(Struct):
    principal: str
    operations: int
    failures: int
    by_operation: dict[str, int]
    first_use: str | None
    last_use: str | None
    sources: list[str]
    uses_after_compromise: int


class UsageTotals(Struct):
    operations: int
    failures: int
    principals: int
    by_operation: dict[str, int]
    uses_after_compromise: int
    first_use: str | None
    last_use: str | None


class CompromiseReport(Struct):
    key_id: str
    key: str
    version: int | None
    compromise_time: str | None
    compromise_reason: str | None
    principals: list[UsageByPrincipal]
    totals: UsageTotals
    uses_after_compromise: list[dict[str, Any]]   # at most 1000, oldest first
    truncated: bool


class BulkRevokeRequest(Struct, forbid_unknown_fields=True):
    namespace: str | None = None
    created_by: str | None = None
    algorithm: str | None = None
    created_before: datetime | None = None
    reason: str | None = None       # required unless dry_run
    dry_run: bool = False


class RevokeError(Struct):
    key: str
    code: str
    detail: str


class BulkRevokeResponse(Struct):
    dry_run: bool
    matched: int
    keys: list[str]                 # at most 100
    truncated: bool
    revoked: int
    failed: int
    errors: list[RevokeError]       # at most 100
