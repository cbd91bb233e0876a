"""The scheduler's lifecycle jobs, and how they are put together (:func:`build_jobs`).

Jobs (each idempotent; each key in its own transaction, so one bad key is counted as
failed and never stops the rest):

* ``crypto_periods`` (:class:`CryptoPeriods`): (a) pre-active keys whose activation date
  has come become active; (b) active or suspended keys whose deactivation date has come
  become deactivated (KMIP 2.1 §3.22; SP 800-57 Part 1 §7); (c) active versions past the
  end of their originator usage period are deactivated (SP 800-57 Part 1 §5.3).
* ``expiry_notices`` (:meth:`CryptoPeriods.notices`): (d) a version whose originator or
  recipient usage period ends within the notice window (30 days by default) raises a
  ``crypto_period_expiry`` alert through ``notify`` (every 5 minutes while it is due; the
  alert service deduplicates).
* ``rotation`` (keykeeper.service.rotation.Rotator).
* ``destruction``: ``destroy_due(now) -> (done, failed)``, crypto-erasure of keys whose
  waiting period ended.
* ``approval_expiry``: pending approval requests past their expiry become expired.

Every state change records a key event by principal ``scheduler``; every key acted on
gets its own audit record (:func:`audit_keys`: ``key.activate``, ``key.deactivate``,
``key.deactivate_version``, ``key.rotate``, ``key.destroy``), and every run writes one
audit record (:func:`audit_runs`) with its counts.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from keykeeper.authz.model import Principal
from keykeeper.domain.keys import Key
from keykeeper.domain.lifecycle import Periods, originator_end, periods_for, recipient_end
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.scheduler import Job, JobResult, JobRun, Scheduler, leader_for
from keykeeper.scheduler.scans import (
    due_for_activation,
    due_for_deactivation,
    versions_ending_by,
)
from keykeeper.service.approvals import Approvals
from keykeeper.service.audit import Auditor
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_views import rfc3339
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.rotation import PRINCIPAL, KeyAudit, Rotator, error_code

__all__ = ["EXPIRY_NOTICE_SECONDS", "CryptoPeriods", "DestroyDue", "Notify", "SchedulerControl",
           "audit_keys", "audit_runs", "build_jobs", "build_scheduler"]

log = logging.getLogger("keykeeper.scheduler")

EXPIRY_NOTICE_SECONDS = 30 * 86_400
# Notices are raised again every 5 minutes while due: within the alert service's dedup
# window (10 minutes by default) each stays one alert whose count and last_seen move.
NOTICE_INTERVAL_SECONDS = 300.0
PAGE = 500
EXPIRY_RULE = "crypto_period_expiry"
_EPOCH = datetime.min.replace(tzinfo=UTC)
# The scheduled backup job (service/backup_schedule.py JOB), added only when configured.
_BACKUP_JOB = "backup"

#: ``notify(rule, severity, subject, summary, evidence)``: raise (or refresh) an alert.
Notify = Callable[[str, str, str, str, dict[str, object]], None]


class DestroyDue(Protocol):
    """keykeeper.service.destruction.Destruction.destroy_due: ``(done, failed)``."""

    def __call__(self, now: datetime, principal: str = ..., *,
                 audit: KeyAudit | None = ...) -> tuple[int, int]: ...



class CryptoPeriods:
    """The ``crypto_periods`` job (see the module docstring); ``notify`` may be None (no
    notices); ``notice_seconds`` is the notice window."""

    def __init__(self, deps: Deps, lookup: KeyLookup, *, notify: Notify | None = None,
                 notice_seconds: int = EXPIRY_NOTICE_SECONDS, page_size: int = PAGE,
                 audit: KeyAudit | None = None) -> None:
        self._d = deps
        self._lookup = lookup
        self._notify = notify
        self._audit = audit
        self._notice = timedelta(seconds=notice_seconds)
        self._page = page_size

    def run(self, now: datetime) -> JobResult:
        """(a), (b) and (c) of the module docstring."""
        counts = {"activated": 0, "deactivated": 0, "versions deactivated": 0}
        failed = 0
        with self._d.reading() as conn:
            to_activate = due_for_activation(conn, now)
            to_deactivate = due_for_deactivation(conn, now)
        for ids, fn, what, op in ((to_activate, self._activate, "activated", "key.activate"),
                                  (to_deactivate, self._deactivate, "deactivated",
                                   "key.deactivate")):
            for key_id in ids:
                try:
                    counts[what] += fn(key_id, now)
                except Exception as exc:
                    failed += 1
                    log.warning("scheduler: %s of key %s failed: %s", what, key_id,
                                type(exc).__name__)
                    self._audited(op, key_id, None, None, exc)
        n, f = self._each_candidate(now, now, self._expire_versions,
                                    (VersionState.ACTIVE,))
        counts["versions deactivated"] += n
        failed += f
        detail = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        return JobResult(sum(counts.values()), failed,
                         detail + (f", {failed} failed" if failed else ""))

    def notices(self, now: datetime) -> JobResult:
        """(d) of the module docstring: ``done`` counts the notices sent."""
        if self._notify is None:
            return JobResult(detail="no alert service")
        sent, failed = self._each_candidate(now, now + self._notice, self._send_notices)
        return JobResult(sent, failed, f"{sent} notices" if sent else "")

    def _each_candidate(self, now: datetime, horizon: datetime,
                        fn: Callable[[Key, Periods, datetime], int],
                        states: tuple[VersionState, ...] = (
                            VersionState.ACTIVE, VersionState.SUSPENDED,
                            VersionState.DEACTIVATED)) -> tuple[int, int]:
        """Call ``fn(key, periods, now)`` for each key with a version in ``states`` whose
        originator period may end by ``horizon``, a page at a time; (sum of fn, keys
        failed)."""
        cache: dict[str, tuple[int | None, int | None]] = {}
        seen: set[str] = set()
        total = failed = 0
        after: tuple[datetime, str, int] | None = None
        while True:
            with self._d.reading() as conn:
                page = versions_ending_by(conn, horizon, after, self._page, states=states)
            for _, key_id, _ in page:
                if key_id in seen:    # a key with several candidate versions: once a run
                    continue
                seen.add(key_id)
                try:
                    with self._d.reading() as conn:
                        key = self._d.keys.get_by_id(conn, key_id)
                    if key is not None:
                        total += fn(key, self._periods(key, cache), now)
                except Exception as exc:
                    failed += 1
                    log.warning("scheduler: crypto-period check of key %s failed: %s",
                                key_id, type(exc).__name__)
            if len(page) < self._page:
                return total, failed
            after = page[-1]

    def _audited(self, operation: str, key_id: str, namespace: str | None,
                 version: int | None, exc: BaseException | None = None) -> None:
        """The audit record of one key acted on (``exc``: how it failed)."""
        if self._audit is not None:
            self._audit(operation, key_id, namespace, version,
                        None if exc is None else error_code(exc))

    # -- key dates ---------------------------------------------------------------------------
    def _set_state(self, key_id: str, now: datetime, action: str, to: KeyState,
                   due: Callable[[Key], bool]) -> int:
        with self._d.transaction() as conn:
            key = self._d.keys.get_by_id(conn, key_id, for_update=True)
            if key is None or not due(key):
                return 0
            self._d.keys.update(conn, key.id, state=str(to), updated_at=now)
            self._d.keys.record_event(conn, key_id=key.id, action=action,
                                      from_state=str(key.state), to_state=str(to),
                                      principal=PRINCIPAL, at=now, reason="scheduled")
        self._lookup.forget(key)
        self._audited(f"key.{action}", key.id, key.namespace, None)
        return 1

    def _activate(self, key_id: str, now: datetime) -> int:
        return self._set_state(key_id, now, "activate", KeyState.ACTIVE, lambda k: (
            k.state == KeyState.PRE_ACTIVE and k.activation_date is not None
            and k.activation_date <= now
            and k.primary_version > 0))  # an external key waits for its import

    def _deactivate(self, key_id: str, now: datetime) -> int:
        return self._set_state(key_id, now, "deactivate", KeyState.DEACTIVATED, lambda k: (
            k.state in (KeyState.ACTIVE, KeyState.SUSPENDED)
            and k.deactivation_date is not None and k.deactivation_date <= now))

    # -- versions ----------------------------------------------------------------------------
    def _periods(self, key: Key, cache: dict[str, tuple[int | None, int | None]]) -> Periods:
        if key.namespace not in cache:
            with self._d.reading() as conn:
                ns = self._d.system.get_namespace(conn, key.namespace)
            cache[key.namespace] = ((ns.originator_usage_period, ns.recipient_usage_period)
                                    if ns is not None else (None, None))
        return periods_for(key, *cache[key.namespace])

    def _expire_versions(self, key: Key, periods: Periods, now: datetime) -> int:
        expired = [v.version for v in key.versions if v.state == VersionState.ACTIVE
                   and originator_end(key, v, periods) <= now]
        if not expired:
            return 0
        try:
            return self._deactivate_versions(key.id, expired, now, periods)
        except Exception as exc:
            self._audited("key.deactivate_version", key.id, key.namespace, None, exc)
            raise

    def _send_notices(self, key: Key, periods: Periods, now: datetime) -> int:
        horizon = now + self._notice
        sent = 0
        for v in key.versions:
            ends: list[tuple[str, datetime]] = []
            if v.state == VersionState.ACTIVE:
                ends.append(("originator", originator_end(key, v, periods)))
            if v.state in (VersionState.ACTIVE, VersionState.SUSPENDED,
                           VersionState.DEACTIVATED):
                ends.append(("recipient", recipient_end(key, v, periods)))
            for period, end in ends:
                if now < end <= horizon:
                    self._send_notice(key, v.version, period, end, now)
                    sent += 1
        return sent

    def _deactivate_versions(self, key_id: str, numbers: list[int], now: datetime,
                             periods: Periods) -> int:
        changed: list[int] = []
        with self._d.transaction() as conn:
            key = self._d.keys.get_by_id(conn, key_id, for_update=True)
            if key is None:
                return 0
            for v in key.versions:
                if (v.version in numbers and v.state == VersionState.ACTIVE
                        and originator_end(key, v, periods) <= now):
                    self._d.keys.update_version(conn, key.id, v.version,
                                                state=str(VersionState.DEACTIVATED),
                                                deactivated_at=now)
                    self._d.keys.record_event(
                        conn, key_id=key.id, action="deactivate-version",
                        from_state=str(v.state), to_state=str(VersionState.DEACTIVATED),
                        principal=PRINCIPAL, at=now, version=v.version,
                        reason="originator usage period ended")
                    changed.append(v.version)
        if changed:
            self._lookup.forget(key)
        for number in changed:
            self._audited("key.deactivate_version", key.id, key.namespace, number)
        return len(changed)

    def _send_notice(self, key: Key, version: int, period: str, end: datetime,
                     now: datetime) -> None:
        assert self._notify is not None
        days = (end - now).total_seconds() / 86_400
        uses = ("encrypt, sign or MAC" if period == "originator" else "decrypt or verify")
        self._notify(
            EXPIRY_RULE, "warning", f"{key.id}:v{version}:{period}",
            f"version {version} of key {key.ref} reaches the end of its {period} usage "
            f"period on {rfc3339(end)} (in {days:.1f} days): it will no longer {uses}",
            {"key_id": key.id, "key": key.ref, "version": version, "period": period,
             "ends_at": rfc3339(end), "days_left": round(days, 1)})


def audit_runs(auditor: Auditor) -> Callable[[str, str, int, int], None]:
    """``audit(job, outcome, done, failed)``: one audit record per job run, operation
    ``scheduler.<job>``, principal ``scheduler``, interface ``scheduler``, with the counts
    as ``items`` and ``failed_items``."""

    def audit(job: str, outcome: str, done: int, failed: int) -> None:
        ctx = RequestContext(interface="scheduler", principal=Principal(PRINCIPAL))
        ctx.items, ctx.failed_items = done, failed
        auditor.wait(auditor.record(ctx, f"scheduler.{job}",
                                    "success" if outcome == "success" else "error",
                                    None if outcome == "success" else outcome))

    return audit


def audit_keys(auditor: Auditor) -> KeyAudit:
    """``audit(operation, key_id, namespace, key_version, error_code)``: one audit record
    per key a job acted on, principal and interface ``scheduler``, outcome ``success`` or
    ``error`` with the code. Not waited for one by one: the run's own record
    (:func:`audit_runs`) comes after them in the chain and is waited for, and the sinks
    write in chain order."""

    def audit(operation: str, key_id: str, namespace: str | None, version: int | None,
              code: str | None) -> None:
        ctx = RequestContext(interface="scheduler", principal=Principal(PRINCIPAL))
        ctx.key_id, ctx.namespace, ctx.key_version = key_id, namespace, version
        auditor.record(ctx, operation, "success" if code is None else "error", code)

    return audit


def build_jobs(deps: Deps, lookup: KeyLookup, rotator: Rotator, approvals: Approvals, *,
               interval_seconds: float, destroy_due: DestroyDue,
               notify: Notify | None = None,
               notice_seconds: int = EXPIRY_NOTICE_SECONDS,
               key_audit: KeyAudit | None = None) -> list[Job]:
    """The lifecycle jobs in the order they run: crypto-periods first (a key activated now
    can be rotated in the same turn), then rotation, destruction and approval expiry.
    ``key_audit`` audits each key acted on (the rotator carries its own)."""
    periods = CryptoPeriods(deps, lookup, notify=notify, notice_seconds=notice_seconds,
                            audit=key_audit)

    def destruction(now: datetime) -> JobResult:
        done, failed = destroy_due(now, audit=key_audit)
        return JobResult(done, failed, f"{done} destroyed" if done or failed else "")

    def approval_expiry(now: datetime) -> JobResult:
        expired = approvals.expire_due()
        return JobResult(expired, 0, f"{expired} expired" if expired else "")

    return [Job("crypto_periods", interval_seconds, periods.run),
            Job("expiry_notices", max(interval_seconds, NOTICE_INTERVAL_SECONDS),
                periods.notices),
            Job("rotation", interval_seconds, rotator.run),
            Job("destruction", interval_seconds, destruction),
            Job("approval_expiry", interval_seconds, approval_expiry)]


class SchedulerControl:
    """This node's view of the scheduler, for health and the scheduler API: its node id
    and role (``leader`` | ``standby`` | ``disabled``)."""

    def __init__(self, node_id: str = "") -> None:
        self.node_id = node_id or default_scheduler_node()
        self.scheduler: Scheduler | None = None

    @property
    def role(self) -> str:
        return "disabled" if self.scheduler is None else self.scheduler.role

    def status(self) -> list[tuple[str, float, JobRun | None]]:
        """Each job's name, interval (seconds) and last run by any node (None: never);
        empty when this node runs no scheduler. The caller authorizes ``scheduler.read``."""
        if self.scheduler is None:
            return []
        runs = self.scheduler.last_runs()
        return [(name, self.scheduler.interval(name), runs[name])
                for name in self.scheduler.job_names]

    def run_now(self, job: str) -> tuple[JobResult, JobRun | None]:
        """Run ``job`` now on this node, which must lead; its result and recorded run. The
        caller authorizes ``scheduler.run``. InvalidArgument for an unknown job;
        FailedPrecondition when the scheduler is off here, or this node is a standby (the
        message names the node that ran jobs last: the leader, as far as the store shows)."""
        scheduler = self.scheduler
        if scheduler is None:
            raise FailedPrecondition(f"the scheduler is disabled on node {self.node_id} "
                                     "(KEYKEEPER_SCHEDULER=off)")
        if job == _BACKUP_JOB and job not in scheduler.job_names:
            raise FailedPrecondition("scheduled backups are not configured on node "
                                     f"{self.node_id} (KEYKEEPER_BACKUP_DIR)")
        if job not in scheduler.job_names:
            shown = job if len(job) <= 64 else job[:64] + "..."
            raise InvalidArgument(f"unknown scheduler job {shown!r}; jobs: "
                                  + ", ".join(scheduler.job_names))
        if not scheduler.leader.is_leader:
            runs = [r for r in scheduler.last_runs().values()
                    if r is not None and r.last_started_at is not None]
            latest = max(runs, key=lambda r: r.last_started_at or _EPOCH, default=None)
            leader = (f"node {latest.node} leads (it ran the last job)" if latest is not None
                      and latest.node != self.node_id else "no node has run a job yet")
            raise FailedPrecondition(f"node {self.node_id} is a scheduler standby; jobs run "
                                     f"on the leader: {leader}")
        result = scheduler.run_job(job)
        return result, scheduler.runs.get(job)


def default_scheduler_node() -> str:
    """The host name and process id (KEYKEEPER_NODE_ID overrides it)."""
    return f"{socket.gethostname() or 'keykeeper'}-{os.getpid()}"


def build_scheduler(deps: Deps, lookup: KeyLookup, approvals: Approvals,
                    auditor: Auditor, *, data_dir: Path, node_id: str, interval_seconds: float,
                    destroy_due: DestroyDue,
                    notify: Notify | None = None, notice_seconds: int = EXPIRY_NOTICE_SECONDS,
                    on_run: Callable[[str, str, float, int, int], None] | None = None,
                    on_leader: Callable[[bool], None] | None = None,
                    extra_jobs: Sequence[Job] = ()) -> Scheduler:
    """The scheduler of one server process, with the lifecycle jobs and ``extra_jobs``
    after them (the scheduled ``backup``, service/backup_schedule.py), elected by the
    store's leader election (keykeeper.scheduler.leader), audited through ``auditor``."""
    key_audit = audit_keys(auditor) if auditor.enabled else None
    rotator = Rotator(deps, lookup, audit=key_audit)
    jobs = build_jobs(deps, lookup, rotator, approvals, interval_seconds=interval_seconds,
                      destroy_due=destroy_due, notify=notify, notice_seconds=notice_seconds,
                      key_audit=key_audit)
    jobs.extend(extra_jobs)
    scheduler = Scheduler(jobs, leader_for(deps.engine, data_dir), deps.clock, node_id,
                          on_run=on_run, on_leader=on_leader,
                          audit=audit_runs(auditor) if auditor.enabled else None,
                          engine=deps.engine, eligible=lambda: not deps.custody.sealed)
    rotator.stopping = lambda: scheduler.stopping
    return scheduler
