"""Monitoring fed by the audit trail: operation metrics, per-key usage statistics and the
anomaly rules.

:meth:`Monitoring.listen` is an audit listener (service/audit.py): for every record that
answers a request (not the ``request`` phase of a mutating one) it counts
``keykeeper_operations_total{key, operation, outcome}``, adds a successful use of a key to
the usage buffer, and queues the record for the anomaly rules -- a few microseconds, in
the request's thread, with no I/O. A background thread (``start``/``stop``, run by the
server) then, every 0.25 s, feeds the queued records to the rules
(keykeeper.monitor.anomaly) and raises what they find through the alert service, and
every ``usage_flush_seconds`` (5) writes the usage buffer to the ``key_usage`` table.
A process killed with SIGKILL loses at most the last 5 seconds of usage statistics (the
audit trail itself keeps every record); ``stop`` flushes what it holds.

Usage statistics (``GET /v1/keys/{key}/usage``, operation ``key.usage``, authorized as
other key reads): per key, the count, first and last use per operation, per principal and
per version. A batch counts its successful items. ``last_used`` is the last data-plane
use (encrypt, decrypt, sign, ...); ``last_accessed`` the last successful call of any kind.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from keykeeper.audit.records import AuditRecord
from keykeeper.authz.operations import DATA_PLANE
from keykeeper.domain.lifecycle import effective_key_state
from keykeeper.errors import InvalidArgument, KeykeeperError
from keykeeper.monitor.anomaly import UNUSABLE_STATES, Detector, Event
from keykeeper.monitor.metrics import Metrics
from keykeeper.monitor.rules import Rules, load_rules
from keykeeper.monitor.usage import UsageBuffer
from keykeeper.service.alerts import AlertService
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_views import rfc3339
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.ratelimit import RateLimiter
from keykeeper.store.usage import UsageRepository, UsageRow

__all__ = ["MonitorSettings", "Monitoring"]

log = logging.getLogger("keykeeper.monitor")
MAX_QUEUE = 20_000  # records awaiting the rules (80,000/s at one pass per 0.25 s)
_DATA_PLANE = frozenset(DATA_PLANE)
_TICK = 0.25


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument(f"{name} must be a number, got '{raw}'") from None
    if value <= 0:
        raise InvalidArgument(f"{name} must be positive")
    return value


@dataclass(frozen=True)
class MonitorSettings:
    """``KEYKEEPER_ALERT_RULES`` (JSON rules file), ``KEYKEEPER_ALERT_WEBHOOK`` (URL),
    ``KEYKEEPER_ALERT_DEDUP`` (seconds, 600), ``KEYKEEPER_METRICS_MAX_KEYS`` (1000),
    ``KEYKEEPER_USAGE_FLUSH_SECONDS`` (5)."""

    rules: Rules = field(default_factory=Rules)
    webhook: str | None = None
    dedup_seconds: float = 600.0
    metrics_max_keys: int = 1000
    usage_flush_seconds: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        """Settings from the environment; InvalidArgument for a bad value or rules file."""
        env = os.environ if environ is None else environ
        rules_file = env.get("KEYKEEPER_ALERT_RULES") or None
        webhook = env.get("KEYKEEPER_ALERT_WEBHOOK") or None
        if webhook is not None and not webhook.startswith(("http://", "https://")):
            raise InvalidArgument("KEYKEEPER_ALERT_WEBHOOK must be an http(s) URL")
        return cls(rules=load_rules(Path(rules_file) if rules_file else None),
                   webhook=webhook,
                   dedup_seconds=_number(env, "KEYKEEPER_ALERT_DEDUP", 600.0),
                   metrics_max_keys=int(_number(env, "KEYKEEPER_METRICS_MAX_KEYS", 1000)),
                   usage_flush_seconds=_number(env, "KEYKEEPER_USAGE_FLUSH_SECONDS", 5.0))


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


class Monitoring:
    """The audit listener, the monitor thread and the key usage read (see the module)."""

    def __init__(self, deps: Deps, lookup: KeyLookup, authz: Authorizer,
                 limits: RateLimiter | None, alerts: AlertService,
                 settings: MonitorSettings | None = None,
                 metrics: Metrics | None = None) -> None:
        self._d = deps
        self._lookup = lookup
        self._authz = authz
        self._limits = limits
        self._alerts = alerts
        self.settings = settings or MonitorSettings()
        self._metrics = metrics
        self.detector = Detector(self.settings.rules)
        self.usage = UsageBuffer()
        self._repo = UsageRepository()
        self._events: deque[AuditRecord] = deque()
        self.dropped = 0
        self._wake = threading.Event()
        self._flush_now = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._work = threading.Lock()  # one drain (thread or test) at a time
        if metrics is not None:
            metrics.register_cache("metadata", lookup.cache_stats)
            handles = deps.custody.handles
            metrics.register_cache("handles", lambda: (handles.hits, handles.misses))
            metrics.register_dropped("anomaly_queue", lambda: self.dropped)
            metrics.register_dropped("usage", lambda: self.usage.dropped)

    # -- the audit listener (the request's thread: no I/O) ------------------------------------
    def listen(self, record: AuditRecord, ctx: RequestContext | None) -> None:
        if record.request_id is None or record.phase == "request":
            return
        outcome = record.outcome
        if self._metrics is not None:
            self._metrics.operation(record.key_id, record.operation,
                                    outcome if outcome != "error"
                                    else record.error_code or "error")
        if outcome == "success" and record.key_id:
            n = (record.items - (record.failed_items or 0)) if record.items else 1
            if n > 0 and self.usage.add(
                    (record.key_id, record.key_version or 0, record.operation,
                     record.principal or ""), datetime.fromisoformat(record.time), n):
                self._flush_now.set()
        if len(self._events) < MAX_QUEUE:
            self._events.append(record)
        else:
            self.dropped += 1

    # -- the monitor thread ------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Evaluate what is queued and flush the usage statistics, then stop the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(30)
        try:
            self.drain()
            self.flush()
        except Exception:  # the server's shutdown goes on (the audit trail still closes)
            log.exception("monitor stop failed")

    def _run(self) -> None:
        next_flush = time.monotonic() + self.settings.usage_flush_seconds
        while not self._stop.is_set():
            self._wake.wait(_TICK)
            self._wake.clear()
            try:
                self.drain()
                if self._flush_now.is_set() or time.monotonic() >= next_flush:
                    self._flush_now.clear()
                    next_flush = time.monotonic() + self.settings.usage_flush_seconds
                    self.flush()
            except Exception:
                log.exception("monitor pass failed")

    def drain(self) -> int:
        """Feed the queued records to the anomaly rules and raise what they find; answers
        how many records it read."""
        done = 0
        with self._work:
            while self._events:
                record = self._events.popleft()
                done += 1
                try:
                    for found in self.detector.observe(self._event(record)):
                        self._alerts.raise_alert(found.rule, found.severity, found.subject,
                                                 found.summary, found.evidence)
                except KeykeeperError as exc:
                    log.error("an alert could not be raised: %s", exc.code)
        return done

    def _event(self, record: AuditRecord) -> Event:
        state: tuple[str | None, str] = (None, "key")
        if (record.error_code == "failed_precondition" and record.key_id
                and record.operation in _DATA_PLANE):
            state = self._key_state(record.key_id, record.key_version)
        return Event(time=_seconds(record.time), operation=record.operation,
                     outcome=record.outcome, error_code=record.error_code,
                     principal=record.principal, source=record.source,
                     key_id=record.key_id, key_version=record.key_version,
                     key_state=state[0], state_of=state[1])

    def _key_state(self, key_id: str, version: int | None) -> tuple[str | None, str]:
        """The state that forbids use of the key, else that of the version the record
        names (its ``key_version``: the one used, or refused), and which of the two it
        is (``key`` | ``version``)."""
        try:
            key = self._lookup.get(RequestContext(interface="monitor"), key_id)
        except KeykeeperError:
            return None, "key"
        state = str(effective_key_state(key, self._d.clock()))
        if state in UNUSABLE_STATES:
            return state, "key"
        found = key.version(version) if version is not None else None
        return (str(found.state), "version") if found is not None else (None, "key")

    def flush(self) -> int:
        """Write the usage buffer to the ``key_usage`` table (kept for the next flush if
        the store refuses); answers how many rows it wrote."""
        cells = self.usage.take()
        if not cells:
            return 0
        rows = [UsageRow(k[0], k[1], k[2], k[3], c.count, c.first_used, c.last_used)
                for k, c in cells.items()]
        try:
            with self._d.transaction() as conn:
                self._repo.add(conn, rows)
        except KeykeeperError as exc:
            log.error("usage statistics not written (%s); kept for the next flush", exc.code)
            self.usage.put_back(cells)
            return 0
        return len(rows)

    # -- GET /v1/keys/{key}/usage ------------------------------------------------------------
    def key_usage(self, ctx: RequestContext, ref: str) -> dict[str, Any]:
        """The usage statistics of one key (``key.usage``): NotFound for a key the caller
        may not see, PermissionDenied without ``key.usage`` on it. Answers ``key_id``,
        ``total``, ``first_used``, ``last_used`` (data plane), ``last_accessed`` (any), and
        ``operations``, ``principals``, ``versions``: lists of ``{name, count, first_used,
        last_used}`` (``version`` for versions; 0 for calls that named none)."""
        key = self._lookup.get(ctx, ref)
        self._authz.require_key(ctx, "key.usage", key, ref)
        if self._limits is not None:
            self._limits.check_namespace(ctx.principal, key.namespace)
        with self._d.reading() as conn:
            rows = self._repo.for_key(conn, key.id)
        groups: dict[str, dict[Any, list[Any]]] = {"operations": {}, "principals": {},
                                                    "versions": {}}
        for row in rows:
            for group, name in (("operations", row.operation), ("principals", row.principal),
                                ("versions", row.version)):
                cell = groups[group].get(name)
                if cell is None:
                    groups[group][name] = [row.count, row.first_used, row.last_used]
                else:
                    cell[0] += row.count
                    cell[1] = min(cell[1], row.first_used)
                    cell[2] = max(cell[2], row.last_used)
        plane = [r.last_used for r in rows if r.operation in _DATA_PLANE]
        view: dict[str, Any] = {
            "key_id": key.id, "total": sum(r.count for r in rows),
            "first_used": rfc3339(min((r.first_used for r in rows), default=None)),
            "last_used": rfc3339(max(plane, default=None)),
            "last_accessed": rfc3339(max((r.last_used for r in rows), default=None))}
        for group, label in (("operations", "operation"), ("principals", "principal"),
                             ("versions", "version")):
            view[group] = [{label: name, "count": c[0], "first_used": rfc3339(c[1]),
                            "last_used": rfc3339(c[2])}
                           for name, c in sorted(groups[group].items(),
                                                 key=lambda item: (-item[1][0], item[0]))]
        return view
