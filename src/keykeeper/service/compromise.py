"""Compromise response: mark one key version compromised, and the compromise report.

A compromised version refuses protect operations at once (the node that marks it drops
its cached metadata; every other node re-reads within its metadata TTL, one second by
default) and processes (decrypt, verify) only with ``allow_compromised``
(domain/lifecycle.py ``check_use``). The compromise time is when it happened (KMIP 2.1
Compromise Occurrence Date), which may be earlier than when it was reported.

The report reads the audit trail's database copy (``audit_records``, service/audit_db.py):
who used the key or version, how often, with which operations, from where, first and
last use, and which uses came after the compromise time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keykeeper.authz.operations import DATA_PLANE
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.errors import FailedPrecondition, NotFound, Unavailable
from keykeeper.service.audit_db import MAX_PAGE, AuditFilter, AuditSearch, row_outcome
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_views import rfc3339
from keykeeper.service.key_args import Gate
from keykeeper.service.keys import check_compromise
from keykeeper.service.lookup import KeyLookup

Executor = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]
Register = Callable[[str, Executor], None]

__all__ = ["MAX_FLAGGED", "CompromiseService", "Register"]

MAX_FLAGGED = 1000        # uses after the compromise time listed one by one, at most
MAX_SCANNED = 500_000     # audit records read for one report, at most (then "truncated")
MAX_SOURCES = 100         # source addresses kept per principal, at most

_USABLE = (VersionState.ACTIVE, VersionState.SUSPENDED, VersionState.DEACTIVATED)
_GONE = (KeyState.DESTROYED, KeyState.DESTROYED_COMPROMISED)
# What the report counts as a use of the key: the data plane and public-key reads, not
# administration (key.create, key.rotate, ...) nor reads of the report itself.
USES = frozenset((*DATA_PLANE, "public_key"))


@dataclass
class _Usage:
    operations: int = 0
    failures: int = 0
    after_compromise: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    first: str | None = None
    last: str | None = None
    sources: set[str] = field(default_factory=set)

    def add(self, time: str, operation: str, outcome: str, source: str | None,
            after: bool) -> None:
        self.operations += 1
        self.failures += outcome != "success"
        self.after_compromise += after
        self.by_operation[operation] += 1
        self.first = time if self.first is None or time < self.first else self.first
        self.last = time if self.last is None or time > self.last else self.last
        if source and len(self.sources) < MAX_SOURCES:
            self.sources.add(source)


class CompromiseService:
    def __init__(self, deps: Deps, lookup: KeyLookup, authz: Authorizer,
                 gate: Gate | None = None, search: AuditSearch | None = None) -> None:
        """``search``: the audit trail's database copy (None when the ``database`` audit
        sink is off: the report then answers ``unavailable`` rather than an empty one)."""
        self._d = deps
        self._lookup = lookup
        self._authz = authz
        self.gate = gate
        self._search = search

    def register_executors(self, register: Register) -> None:
        """The executor of an approved ``key.compromise_version`` (runs as the requester)."""
        register("key.compromise_version", lambda ctx, a: self._executed(
            self.compromise_version(ctx, a["key"], int(a["version"]), a["reason"],
                                    compromise_time=_when(a.get("compromise_time"))),
            int(a["version"])))

    @staticmethod
    def _executed(key: Key, version: int) -> dict[str, Any]:
        v = key.version(version)
        return {"key": key.id, "version": version, "state": str(v.state) if v else None}

    # -- one version ------------------------------------------------------------------------
    def compromise_version(self, ctx: RequestContext, ref: str, version: int, reason: str,
                           *, compromise_time: datetime | None = None) -> Key:
        """Mark ``version`` compromised (dual control by default). NotFound for an unknown
        version; FailedPrecondition for a destroyed key or a version already compromised
        or destroyed; InvalidArgument for a bad reason or a future compromise time."""
        check_compromise(reason, compromise_time, self._d.clock())
        self._lookup.require_unsealed()
        ctx.key_version = version
        current = self._lookup.get(ctx, ref)
        self._authz.require_key(ctx, "key.compromise_version", current, ref)
        self._check(current, ref, version)
        if self.gate is not None:
            extra = ({"compromise_time": compromise_time.isoformat()}
                     if compromise_time is not None else {})
            self.gate(ctx, "key.compromise_version",
                      {"key": current.id, "version": version, "reason": reason, **extra},
                      summary=f"mark version {version} of key {current.ref} compromised: "
                              f"{reason}", namespace=current.namespace, key_id=current.id)
        with self._d.transaction() as conn:
            key = self._d.keys.get_by_id(conn, current.id, for_update=True)
            if key is None:
                raise NotFound(f"key '{ref}' not found")
            self._authz.require_key(ctx, "key.compromise_version", key, ref)
            target = self._check(key, ref, version)
            now = self._d.clock()
            self._d.keys.update_version(conn, key.id, version,
                                        state=str(VersionState.COMPROMISED),
                                        compromised_at=compromise_time or now,
                                        compromise_reason=reason)
            self._d.keys.update(conn, key.id, updated_at=now)
            self._d.keys.record_event(conn, key_id=key.id, action="compromise-version",
                                      from_state=str(target.state),
                                      to_state=str(VersionState.COMPROMISED),
                                      principal=ctx.actor, at=now, version=version,
                                      reason=reason)
            result = self._d.keys.get_by_id(conn, key.id)
        self._lookup.forget(key)
        assert result is not None
        return result

    @staticmethod
    def _check(key: Key, ref: str, version: int) -> KeyVersion:
        if key.state in _GONE:
            raise FailedPrecondition(f"key '{ref}' is destroyed")
        target = key.version(version)
        if target is None:
            raise NotFound(f"key '{ref}' has no version {version}")
        if target.state not in _USABLE:
            raise FailedPrecondition(f"key version {version} is {target.state}")
        return target

    # -- the report -------------------------------------------------------------------------
    def report(self, ctx: RequestContext, ref: str, version: int | None = None
               ) -> dict[str, Any]:
        """Use of the key (or one version) from the audit trail's database copy::

            {"key_id", "key", "version", "compromise_time", "compromise_reason",
             "principals": [{"principal", "operations", "failures", "by_operation",
                             "first_use", "last_use", "sources", "uses_after_compromise"}],
             "totals": {"operations", "failures", "principals", "by_operation",
                        "uses_after_compromise", "first_use", "last_use"},
             "uses_after_compromise": [{"time", "principal", "operation", "source",
                                        "key_version", "request_id", "outcome"}],
             "truncated": bool}

        Counts every audited use of the key -- a data-plane call (authz.operations
        DATA_PLANE) or a public-key read, success or refusal; administrative calls are
        not uses -- and with ``version``, only records naming that version (a refused call
        names the version it asked for; a rewrap, the version it decrypted). ``outcome``
        is ``success`` or the error's code. Times are RFC 3339 UTC. NotFound for an
        unknown version."""
        key = self._lookup.get(ctx, ref)
        self._authz.require_key(ctx, "key.compromise_report", key, ref)
        if self._search is None:
            raise Unavailable("the compromise report reads the audit trail's database copy: "
                              "add the database sink to KEYKEEPER_AUDIT_SINKS")
        when: datetime | None = key.compromised_at
        reason = key.compromise_reason
        if version is not None:
            ctx.key_version = version
            v = key.version(version)
            if v is None:
                raise NotFound(f"key '{ref}' has no version {version}")
            when, reason = v.compromised_at or when, v.compromise_reason or reason
        cutoff = rfc3339_us(when)
        users: dict[str, _Usage] = {}
        flagged: list[dict[str, Any]] = []
        truncated = False
        token: str | None = None
        scanned = 0
        while True:
            rows, token = self._search.search(AuditFilter(key_id=key.id), MAX_PAGE, token,
                                              newest_first=False)
            scanned += len(rows)
            for row in rows:
                rec = json.loads(row.record)
                if (rec.get("phase") == "request" or rec.get("outcome") == "pending"
                        or rec.get("operation") not in USES):
                    continue
                if version is not None and rec.get("key_version") != version:
                    continue
                time = str(rec.get("time", ""))
                after = cutoff is not None and time > cutoff
                who = str(rec.get("principal") or "(anonymous)")
                outcome = row_outcome(str(rec.get("outcome")), rec.get("error_code"),
                                      rec.get("execution"))
                users.setdefault(who, _Usage()).add(
                    time, str(rec.get("operation")), outcome, rec.get("source"), after)
                if after:
                    if len(flagged) < MAX_FLAGGED:
                        flagged.append({**{k: rec.get(k) for k in (
                            "time", "principal", "operation", "source", "key_version",
                            "request_id")}, "outcome": outcome})
                    else:
                        truncated = True
            if token is None:
                break
            if scanned >= MAX_SCANNED:  # bounded work per request: the oldest records count
                truncated = True
                break
        total = _Usage()
        for u in users.values():
            total.operations += u.operations
            total.failures += u.failures
            total.after_compromise += u.after_compromise
            total.by_operation.update(u.by_operation)
            for t in (u.first, u.last):
                if t is not None:
                    total.first = t if total.first is None or t < total.first else total.first
                    total.last = t if total.last is None or t > total.last else total.last
        return {
            "key_id": key.id, "key": key.ref, "version": version,
            "compromise_time": rfc3339(when), "compromise_reason": reason,
            "principals": [_usage_view(name, u) for name, u in sorted(users.items())],
            "totals": {"operations": total.operations, "failures": total.failures,
                       "principals": len(users), "by_operation": dict(total.by_operation),
                       "uses_after_compromise": total.after_compromise,
                       "first_use": total.first, "last_use": total.last},
            "uses_after_compromise": flagged, "truncated": truncated,
        }


def _usage_view(name: str, u: _Usage) -> dict[str, Any]:
    return {"principal": name, "operations": u.operations, "failures": u.failures,
            "by_operation": dict(u.by_operation), "first_use": u.first, "last_use": u.last,
            "sources": sorted(u.sources), "uses_after_compromise": u.after_compromise}


def rfc3339_us(when: datetime | None) -> str | None:
    """``when`` as audit records write times (RFC 3339 UTC, microseconds, ``Z``), so
    the two compare as strings."""
    if when is None:
        return None
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None

