"""The scheduler's rotation job: rotate every key whose rotation is due.

A key is due when ``keykeeper.domain.lifecycle.rotation_due`` says so: it is active and
its ``next_rotation_time`` has come -- by its ``rotation_period`` (reason ``scheduled``) or
because the usage counter moved it to *now* at the soft threshold (``rotation_reason``
``usage``; NIST SP 800-38D §8.3 for AES-GCM). Due keys are found by the indexed
``next_rotation_time``, a page at a time.

Each key is rotated in its own transaction, which re-reads the key under a row lock and
checks ``rotation_due`` again: a retried run, a leader killed mid-run or two leaders at
once never make a second version for one due time. The new material is generated before
the transaction opens (RSA-4096 takes seconds). The rotation sets the new primary version,
``next_rotation_time`` = now + ``rotation_period`` (NULL without a period), clears
``rotation_reason``, and records a ``rotate`` event by principal ``scheduler``. Each key
acted on is also audited (``audit``: operation ``key.rotate``, interface and principal
``scheduler``, ``key_version`` the new version; outcome success or the error's code), so
``keykeeper audit search --key`` finds scheduled rotations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from keykeeper.domain.keys import Key
from keykeeper.domain.lifecycle import rotation_due
from keykeeper.domain.states import KeyState
from keykeeper.errors import KeykeeperError
from keykeeper.scheduler import JobResult
from keykeeper.scheduler.scans import due_for_rotation
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.versions import (
    add_primary_version,
    discard_on_failure,
    prepare_version,
)

__all__ = ["PRINCIPAL", "KeyAudit", "Rotator", "error_code"]

log = logging.getLogger("keykeeper.scheduler")

PRINCIPAL = "scheduler"
PAGE = 500  # keys read per scan page

#: ``audit(operation, key_id, namespace, key_version, error_code)``: the audit record of
#: one key the scheduler acted on (``error_code`` None: success); written by
#: keykeeper.service.lifecycle_jobs.audit_keys.
KeyAudit = Callable[[str, str, str | None, int | None, str | None], None]


def error_code(exc: BaseException) -> str:
    """The stable code of a failure, for its audit record (``internal`` if it has none)."""
    return exc.code if isinstance(exc, KeykeeperError) else "internal"


class Rotator:
    """``run(now)`` is the job; ``rotate_one(key_id, now)`` rotates one key if due."""

    def __init__(self, deps: Deps, lookup: KeyLookup, *, page_size: int = PAGE,
                 stopping: Callable[[], bool] = lambda: False,
                 audit: KeyAudit | None = None) -> None:
        self._d = deps
        self._lookup = lookup
        self._page = page_size
        self.stopping = stopping
        self.audit = audit

    def run(self, now: datetime) -> JobResult:
        """Rotate every due key; one key's failure is logged and counted, never stops the
        rest. Skips the run while sealed (nothing can be wrapped)."""
        if self._d.custody.sealed:
            return JobResult(detail="sealed: skipped")
        done = failed = 0
        after: tuple[datetime, str] | None = None
        while not self.stopping():
            with self._d.reading() as conn:
                page = due_for_rotation(conn, now, after, self._page)
            for due_at, key_id in page:
                if self.stopping():
                    break
                try:
                    if self.rotate_one(key_id, now):
                        done += 1
                except Exception as exc:
                    failed += 1
                    log.warning("scheduler: rotation of key %s failed: %s", key_id,
                                type(exc).__name__)
                after = (due_at, key_id)
            if len(page) < self._page:
                break
        return JobResult(done, failed, f"{done} rotated" + (f", {failed} failed"
                                                            if failed else ""))

    def rotate_one(self, key_id: str, now: datetime) -> bool:
        """Rotate ``key_id`` if it is due at ``now``; False if it is not (any more). A
        rotation, or its failure (raised again), is audited through ``audit``."""
        with self._d.reading() as conn:
            current = self._d.keys.get_by_id(conn, key_id)
        if current is None or current.origin == "external" or not rotation_due(current, now):
            return False  # external keys get versions by import only (issue 6 §3)
        try:
            number = self._rotate(current, now)
        except Exception as exc:
            if self.audit is not None:
                self.audit("key.rotate", key_id, current.namespace, None, error_code(exc))
            raise
        if number is not None and self.audit is not None:
            self.audit("key.rotate", key_id, current.namespace, number, None)
        return number is not None

    def _rotate(self, current: Key, now: datetime) -> int | None:
        """The new version's number, or None if the key is no longer due."""
        prepared = prepare_version(self._lookup, current)
        with discard_on_failure(self._d, prepared) as outcome, self._d.transaction() as conn:
            key = self._d.keys.get_by_id(conn, current.id, for_update=True)
            if key is None or not rotation_due(key, now) or key.state != KeyState.ACTIVE:
                outcome.unused = True   # an HSM key made for it is destroyed
                return None    # rotated meanwhile (a retry, another leader) or changed
            number = add_primary_version(
                self._d, conn, key, prepared, principal=PRINCIPAL, now=now,
                reason=key.rotation_reason or "scheduled")
        self._lookup.forget(key)
        return number
