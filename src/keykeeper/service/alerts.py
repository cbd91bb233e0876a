"""Alerts: raised by the anomaly rules (service/monitoring.py) and the scheduler, kept in
the ``alerts`` table, listed and acknowledged over the API (``alert.list``,
``alert.acknowledge``).

:meth:`AlertService.raise_alert` deduplicates first: the same rule and subject last seen
within ``dedup_seconds`` (600; ``KEYKEEPER_ALERT_DEDUP``) on any node adds one to that
alert's count and moves its ``last_seen``, and notifies nobody. A new alert is logged at
WARNING, recorded in the audit trail (operation ``alert``, no principal, detail the
summary, reason the rule), counted (``keykeeper_alerts_total{rule, severity}``) and, when
``KEYKEEPER_ALERT_WEBHOOK`` is set, POSTed as JSON to it from a background thread (a
bounded queue, a timeout per delivery): no request ever waits on the webhook.

Evidence names principals, key ids, source addresses, operations and counts -- never a
token, plaintext or key material.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from keykeeper.errors import InvalidArgument, NotFound
from keykeeper.monitor.metrics import Metrics
from keykeeper.service.audit import Auditor
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_views import rfc3339
from keykeeper.store.alerts import AlertFilter, AlertRepository, AlertRow

__all__ = ["SEVERITIES", "AlertService", "AlertSettings", "alert_view"]

log = logging.getLogger("keykeeper.alerts")
SEVERITIES = ("info", "warning", "critical")
STATES = ("open", "acknowledged")
_STOP = object()


@dataclass(frozen=True)
class AlertSettings:
    dedup_seconds: float = 600.0
    webhook: str | None = None
    webhook_timeout: float = 5.0
    webhook_queue: int = 1000
    node: str = "keykeeper"


def alert_view(row: AlertRow) -> dict[str, Any]:
    """The alert as the API and the webhook show it (times RFC 3339 UTC)."""
    return {"id": row.id, "rule": row.rule, "severity": row.severity,
            "subject": row.subject, "summary": row.summary, "evidence": row.evidence,
            "count": row.count, "node": row.node, "first_seen": rfc3339(row.first_seen),
            "last_seen": rfc3339(row.last_seen), "state": row.state,
            "acknowledged_by": row.acknowledged_by}


class AlertService:
    """Raises, lists and acknowledges alerts; a background object (its webhook sender)."""

    def __init__(self, deps: Deps, authz: Authorizer, auditor: Auditor,
                 settings: AlertSettings | None = None, metrics: Metrics | None = None
                 ) -> None:
        self._d = deps
        self._authz = authz
        self._audit = auditor
        self.settings = settings or AlertSettings()
        self._metrics = metrics
        self._repo = AlertRepository()
        self._queue: queue.Queue[object] = queue.Queue(self.settings.webhook_queue)
        self._thread: threading.Thread | None = None
        self.delivered = 0

    # -- raising -----------------------------------------------------------------------------
    def raise_alert(self, rule: str, severity: str, subject: str, summary: str,
                    evidence: dict[str, object]) -> None:
        """Raise an alert (see the module docstring). ``severity``: info, warning or
        critical (InvalidArgument otherwise). Storage errors raise Unavailable; the
        notification steps never raise."""
        if severity not in SEVERITIES:
            raise InvalidArgument("severity must be info, warning or critical")
        now = self._d.clock()
        with self._d.transaction() as conn:
            row, new = self._repo.raise_or_bump(
                conn, new_id="al-" + secrets.token_hex(16), rule=rule, severity=severity,
                subject=subject, summary=summary, evidence=dict(evidence),
                node=self.settings.node, now=now,
                dedup_since=now - timedelta(seconds=self.settings.dedup_seconds))
        if not new:
            return
        log.warning("alert %s (%s) %s: %s", rule, severity, row.subject, summary)
        try:
            self._audit.note("alert", detail=summary, reason=rule)
        except Exception:
            log.exception("the audit record of alert %s could not be written", row.id)
        if self._metrics is not None:
            self._metrics.alert(rule, severity)
        if self.settings.webhook:
            try:
                self._queue.put_nowait(alert_view(row))
            except queue.Full:
                log.error("alert webhook queue full: alert %s not delivered", row.id)
                self._failed()

    # -- API ---------------------------------------------------------------------------------
    def list(self, ctx: RequestContext, flt: AlertFilter, page_size: int | None,
             page_token: str | None) -> tuple[list[AlertRow], str | None]:
        """``GET /v1/alerts`` (``alert.list``): newest first, paginated (page_size 1..1000,
        default 100). InvalidArgument for an unknown state or severity, or a bad token."""
        self._authz.require(ctx, "alert.list")
        size = 100 if page_size is None else page_size
        if not 1 <= size <= 1000:
            raise InvalidArgument("page_size must be between 1 and 1000")
        if flt.state is not None and flt.state not in STATES:
            raise InvalidArgument("state must be open or acknowledged")
        if flt.severity is not None and flt.severity not in SEVERITIES:
            raise InvalidArgument("severity must be info, warning or critical")
        with self._d.reading() as conn:
            return self._repo.list(conn, flt, size, page_token)

    def acknowledge(self, ctx: RequestContext, alert_id: str) -> AlertRow:
        """``POST /v1/alerts/{id}/acknowledge`` (``alert.acknowledge``): NotFound for an
        unknown id; acknowledging twice keeps the first acknowledger."""
        who = self._authz.require(ctx, "alert.acknowledge")
        with self._d.transaction() as conn:
            row = self._repo.acknowledge(conn, alert_id[:40], who.name)
        if row is None:
            raise NotFound(f"alert '{alert_id}' not found")
        return row

    # -- the webhook sender (a background object) --------------------------------------------
    def start(self) -> None:
        if self.settings.webhook and self._thread is None:
            # httpx logs each request's URL at INFO; a webhook URL may carry a secret.
            logging.getLogger("httpx").setLevel(logging.WARNING)
            self._thread = threading.Thread(target=self._deliver, name="alert-webhook",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Deliver what is queued (at most one timeout per alert, then give up)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(self.settings.webhook_timeout * 2 + 1)

    def _failed(self) -> None:
        if self._metrics is not None:
            self._metrics.webhook_failure()

    def _deliver(self) -> None:
        url = self.settings.webhook
        assert url is not None
        with httpx.Client(timeout=self.settings.webhook_timeout,
                          headers={"user-agent": "keykeeper-alerts"}) as http:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                try:
                    response = http.post(url, json=item)
                    if response.status_code >= 300:
                        raise httpx.HTTPStatusError("refused", request=response.request,
                                                    response=response)
                    self.delivered += 1
                except httpx.HTTPError as exc:
                    log.error("alert webhook delivery failed: %s", type(exc).__name__)
                    self._failed()
