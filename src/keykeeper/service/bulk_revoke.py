"""Bulk revocation by query, for organisation-wide compromise response.

``key.bulk_revoke`` is a system operation (role alone) under dual control by default
(service/approval_policy.py). The query (namespace, creator, algorithm, created before;
at least one) selects the keys in a state that can still be marked compromised
(domain/states.py) on which the caller holds ``key.compromise``; a dry run answers them
without acting; otherwise, once approved, each is marked compromised in its own
transaction (service/keys.py ``mark_compromised``), so one failure never stops the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from keykeeper.crypto.registry import get_spec
from keykeeper.domain.keys import Key
from keykeeper.domain.names import validate_name
from keykeeper.domain.states import KeyState
from keykeeper.errors import InvalidArgument, KeykeeperError, NotFound, PermissionDenied
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.compromise import Register
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.key_args import Gate, check_text, check_time
from keykeeper.service.keys import KeyAdmin, check_compromise
from keykeeper.store.receipts import KeyQuery, ReceiptRepository

__all__ = ["MAX_LISTED", "BulkRevoke", "RevokeQuery"]

log = logging.getLogger("keykeeper.bulk_revoke")

MAX_LISTED = 100      # key refs (and errors) listed in an answer, at most
_PAGE = 500
_REVOCABLE = tuple(str(s) for s in (KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED,
                                    KeyState.DEACTIVATED, KeyState.PENDING_DESTRUCTION))


@dataclass(frozen=True, slots=True)
class RevokeQuery:
    namespace: str | None = None
    created_by: str | None = None
    algorithm: str | None = None
    created_before: datetime | None = None

    def check(self) -> None:
        """InvalidArgument unless at least one filter is given and each is well formed."""
        if all(v is None for v in (self.namespace, self.created_by, self.algorithm,
                                   self.created_before)):
            raise InvalidArgument("give at least one filter: namespace, created_by, "
                                  "algorithm or created_before")
        if self.namespace is not None:
            validate_name(self.namespace, "namespace")
        for name in ("created_by", "algorithm"):
            value = getattr(self, name)
            if value is not None:
                if not value or len(value) > 256:
                    raise InvalidArgument(f"{name} must be 1 to 256 characters")
                check_text(value, name)
        if self.created_before is not None:
            check_time(self.created_before, "created_before")  # a zone, 1970 .. 9000
        if self.algorithm is not None:
            get_spec(self.algorithm)  # InvalidArgument naming an unknown or refused name

    def arguments(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "created_by": self.created_by,
                "algorithm": self.algorithm,
                "created_before": (self.created_before.isoformat()
                                   if self.created_before else None)}

    @classmethod
    def from_arguments(cls, a: dict[str, Any]) -> RevokeQuery:
        before = a.get("created_before")
        return cls(namespace=a.get("namespace"), created_by=a.get("created_by"),
                   algorithm=a.get("algorithm"),
                   created_before=datetime.fromisoformat(before) if before else None)


class BulkRevoke:
    def __init__(self, deps: Deps, keys: KeyAdmin, authz: Authorizer,
                 gate: Gate | None = None) -> None:
        self._d = deps
        self._keys = keys
        self._authz = authz
        self.gate = gate
        self._repo = ReceiptRepository()

    def register_executors(self, register: Register) -> None:
        register("key.bulk_revoke", lambda ctx, a: self.revoke(
            ctx, RevokeQuery.from_arguments(a), str(a["reason"])))

    def _matching(self, ctx: RequestContext, query: RevokeQuery) -> Iterator[Key]:
        """The revocable keys matching ``query`` that the caller may compromise."""
        flt = KeyQuery(namespace=query.namespace, created_by=query.created_by,
                       algorithm=query.algorithm, created_before=query.created_before,
                       states=_REVOCABLE)
        after: str | None = None
        while True:
            with self._d.reading() as conn:
                ids = self._repo.matching_keys(conn, flt, after=after, limit=_PAGE)
                found = [k for k in (self._d.keys.get_by_id(conn, i) for i in ids)
                         if k is not None]
            for key in found:
                try:
                    self._authz.require_key(ctx, "key.compromise", key)
                except (NotFound, PermissionDenied):
                    continue
                yield key
            if len(ids) < _PAGE:
                return
            after = ids[-1]

    def revoke(self, ctx: RequestContext, query: RevokeQuery, reason: str | None, *,
               dry_run: bool = False) -> dict[str, Any]:
        """Mark every matching key compromised (or, ``dry_run``, only list them)::

            {"dry_run": bool, "matched": int, "keys": [ref, ...] (at most 100),
             "truncated": bool, "revoked": int, "failed": int,
             "errors": [{"key", "code", "detail"}] (at most 100)}

        Raises PermissionDenied without ``key.bulk_revoke``, InvalidArgument for no
        filter, a bad filter or (unless ``dry_run``) a missing reason, ApprovalRequired
        while dual control waits."""
        self._authz.require(ctx, "key.bulk_revoke")
        query.check()
        if query.created_before is not None:   # stored times are UTC (SQLite compares text)
            query = replace(query, created_before=query.created_before.astimezone(UTC))
        if query.algorithm is not None:        # as the registry spells it (case-insensitive)
            query = replace(query, algorithm=get_spec(query.algorithm).name)
        if query.namespace is not None:
            with self._d.reading() as conn:
                if self._d.system.get_namespace(conn, query.namespace) is None:
                    raise NotFound(f"namespace '{query.namespace}' not found")
        if not dry_run and self.gate is not None and not ctx.approval_id:
            # What the approvers see is what runs: keys created after this request never
            # join it (the set may only shrink, as keys are destroyed meanwhile).
            cutoff = self._d.clock() + timedelta(microseconds=1)  # "before" is strict
            if query.created_before is None or query.created_before > cutoff:
                query = replace(query, created_before=cutoff)
        if not dry_run:
            check_compromise(reason or "", None, self._d.clock())
        if query.namespace is not None:
            ctx.namespace = query.namespace
        listed: list[str] = []
        matched = 0
        if not dry_run and self.gate is not None:
            matched = sum(1 for _ in self._matching(ctx, query))
            self.gate(ctx, "key.bulk_revoke", {**query.arguments(), "reason": reason},
                      summary=f"mark {matched} key(s) compromised ({_describe(query)}): "
                              f"{reason}", namespace=query.namespace)
        matched = revoked = failed = 0
        errors: list[dict[str, str]] = []
        for key in self._matching(ctx, query):
            matched += 1
            if len(listed) < MAX_LISTED:
                listed.append(key.ref)
            if dry_run:
                continue
            saved = (ctx.namespace, ctx.key_id)
            try:
                assert reason is not None
                self._keys.mark_compromised(ctx, key.id, reason, None, "key.compromise")
                revoked += 1
            except KeykeeperError as exc:
                failed += 1
                if len(errors) < MAX_LISTED:
                    errors.append({"key": key.ref, "code": exc.code, "detail": exc.detail})
            except Exception:  # isolate each key's failure
                failed += 1
                log.exception("bulk revocation of key %s failed", key.id)
                if len(errors) < MAX_LISTED:
                    errors.append({"key": key.ref, "code": "internal",
                                   "detail": "unexpected failure"})
            finally:
                ctx.namespace, ctx.key_id = saved
        if not dry_run:
            log.warning("bulk revocation (%r) by %r: %d revoked, %d failed", _describe(query),
                        ctx.actor, revoked, failed)
        return {"dry_run": dry_run, "matched": matched, "keys": listed,
                "truncated": matched > len(listed), "revoked": revoked, "failed": failed,
                "errors": errors}


def _describe(query: RevokeQuery) -> str:
    return ", ".join(f"{k}={v}" for k, v in query.arguments().items() if v is not None)
