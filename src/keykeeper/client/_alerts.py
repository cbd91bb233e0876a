"""Monitoring routes of the SDK: alerts (``/v1/alerts``) and per-key usage statistics
(``/v1/keys/{key}/usage``). The shapes are those of docs/monitoring.md."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from keykeeper.client._http import Http, key_path
from keykeeper.client._http import segment as _seg

__all__ = ["Alert", "AlertPage", "AlertsMixin", "KeyUsage", "UsageCount"]


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert. ``subject`` and ``rule`` identify it for deduplication: ``count`` is how
    often it was raised again within the window, ``last_seen`` the last time."""

    id: str
    rule: str
    severity: str
    subject: str
    summary: str
    evidence: dict[str, Any]
    count: int
    node: str
    first_seen: datetime
    last_seen: datetime
    state: str
    acknowledged_by: str | None = None


class AlertPage(msgspec.Struct, frozen=True, kw_only=True):
    alerts: list[Alert]
    next_page_token: str | None = None


class UsageCount(msgspec.Struct, frozen=True, kw_only=True):
    """Uses of a key by one operation, principal or version (one of the three is set)."""

    count: int
    first_used: datetime
    last_used: datetime
    operation: str | None = None
    principal: str | None = None
    version: int | None = None


class KeyUsage(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/keys/{key}/usage``. ``last_used``: last data-plane use; ``last_accessed``:
    last successful call of any kind. Written by each server every 5 seconds."""

    key_id: str
    total: int
    first_used: datetime | None
    last_used: datetime | None
    last_accessed: datetime | None
    operations: list[UsageCount]
    principals: list[UsageCount]
    versions: list[UsageCount]


def _time(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value


class AlertsMixin:
    """Alert and usage routes; mixed into :class:`Client`. Listing needs ``alert.list``,
    acknowledging ``alert.acknowledge``, usage ``key.usage`` on the key."""

    _http: Http

    def list_alerts(self, *, state: str | None = None, rule: str | None = None,
                    severity: str | None = None, since: datetime | str | None = None,
                    page_size: int | None = None, page_token: str | None = None,
                    ) -> AlertPage:
        """``GET /v1/alerts``: one page, newest first. ``since`` is a time or a duration
        ago such as ``"1h"`` (by last seen). Raises InvalidArgument for a bad filter."""
        return self._http.call("GET", "/v1/alerts", AlertPage, params={
            "state": state, "rule": rule, "severity": severity, "since": _time(since),
            "page_size": page_size, "page_token": page_token})

    def iter_alerts(self, **filters: Any) -> Iterator[Alert]:
        """Every alert matching ``filters`` (as :meth:`list_alerts`), page after page."""
        token: str | None = None
        while True:
            page = self.list_alerts(page_token=token, **filters)
            yield from page.alerts
            token = page.next_page_token
            if token is None:
                return

    def acknowledge_alert(self, alert_id: str) -> Alert:
        """``POST /v1/alerts/{id}/acknowledge``. Raises NotFound."""
        return self._http.call("POST", f"/v1/alerts/{_seg(alert_id, 'alert id')}/acknowledge",
                               Alert, body={})

    def key_usage(self, key: str) -> KeyUsage:
        """``GET /v1/keys/{key}/usage``. Raises NotFound, PermissionDenied."""
        return self._http.call("GET", key_path(key, "usage"), KeyUsage)
