"""msgspec structs of the monitoring routes: alerts and key usage statistics
(rest/alert_routes.py). Times are RFC 3339 UTC strings; ``evidence`` holds names, ids,
addresses and counts, never secrets (docs/monitoring.md)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct


class AlertOut(Struct):
    id: str
    rule: str
    severity: str                 # info | warning | critical
    subject: str                  # what it is about; deduplication key with the rule
    summary: str
    evidence: dict[str, Any]
    count: int                    # times raised within the deduplication window
    node: str                     # the node that raised it first
    first_seen: str
    last_seen: str
    state: str                    # open | acknowledged
    acknowledged_by: str | None = None


class AlertList(Struct, omit_defaults=True):
    alerts: list[AlertOut]
    next_page_token: str | None = None


class UsageByOperation(Struct):
    operation: str
    count: int
    first_used: str
    last_used: str


class UsageByPrincipal(Struct):
    principal: str
    count: int
    first_used: str
    last_used: str


class UsageByVersion(Struct):
    version: int                  # 0: calls that named no version
    count: int
    first_used: str
    last_used: str


class KeyUsage(Struct):
    key_id: str
    total: int
    first_used: str | None
    last_used: str | None         # last data-plane use (encrypt, decrypt, sign, ...)
    last_accessed: str | None     # last successful call of any kind
    operations: list[UsageByOperation]
    principals: list[UsageByPrincipal]
    versions: list[UsageByVersion]
