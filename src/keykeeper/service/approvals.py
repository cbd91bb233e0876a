"""Dual control (M-of-N approval): the gate, the votes, and exactly-once execution.

Flow (docs/dual-control.md):

1. A service operation under dual control calls :meth:`Approvals.gate` after it has
   authorized and validated the call and before it opens a transaction. Unless the
   caller is ``root`` (the break-glass init token, which bypasses dual control as Vault's
   root token bypasses control groups), the gate stores a *pending* request (operation,
   JSON arguments, requester) and raises :class:`ApprovalRequired` (HTTP 202) naming it.
2. Principals holding one of the rule's approver roles vote with :meth:`approve` or
   :meth:`reject`. The requester never votes; each principal votes once; one rejection
   rejects the request (a veto); a request past its expiry is expired and takes no vote.
3. The vote that brings the M-th approval claims the request with a conditional
   ``UPDATE ... SET state='executing' WHERE state='pending'`` (exactly one caller, on any
   node, wins), then runs the registered executor **as the requester** (re-read from the
   store: a deleted or disabled requester fails the request), with ``ctx.approval_id``
   set so that the gate lets this one execution through. The result (or the error's code
   and detail) is stored: state ``executed`` or ``failed``.

States: pending -> executing -> executed | failed; pending -> rejected | expired.
A request never goes back to pending, so an operation runs at most once.

Secrets: a request is shown to every approver, so its arguments never hold one and its
stored result has secret-named fields withheld. An operation whose answer is a secret for
the requester (``token.create`` for another principal) marks it
:class:`~keykeeper.service.approval_args.Claimable`: it is stored in the result only
wrapped with AES-256-GCM under a key derived from the root key
(``Custody.derive(b"keykeeper/approval-secret/v1")``; associated data binds the request
id, operation and requester), never shown by get/list/votes, and handed to the requester
alone, once, by :meth:`Approvals.claim` (then erased from the row).

Lock-out: once no root token is active, a new policy is refused when a rule would have
fewer principals able to approve than it requires (nothing under it could run again).

Audit: each call is audited as its route (``approval.approve``, ...). The context of the
approving call carries ``approval_id`` and the namespace, key and version the execution
touched, so its audit record names both the approver and the executed request.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from keykeeper.authz.model import Principal
from keykeeper.crypto.aead import aead_open, aead_seal
from keykeeper.errors import (
    AlreadyExists,
    ApprovalRequired,
    DecryptionFailed,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    KeykeeperError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from keykeeper.service.approval_args import (
    MAX_ARGUMENTS,
    WITHHELD,
    check_arguments,
    split_claimable,
    withhold,
)
from keykeeper.service.approval_policy_admin import ApprovalPolicyAdmin
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_views import rfc3339
from keykeeper.store.approvals import Approval, ApprovalRepository, Vote

ClaimCheck = Callable[[RequestContext, Mapping[str, Any], Mapping[str, Any]], None]

__all__ = ["STATES", "Approvals", "Executor"]

log = logging.getLogger("keykeeper.approvals")

Executor = Callable[[RequestContext, dict[str, Any]], Mapping[str, Any]]

STATES = ("pending", "executing", "executed", "failed", "rejected", "expired")
MAX_COMMENT = 1024
MAX_SUMMARY = 1024
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ID_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")  # a principal name (authz/model.py)
# A claimable secret in a stored result: wrapped under this root-derived key, in this
# field (never shown); "claim" tells whether it is still to be claimed.
SECRET_KEY_INFO = b"keykeeper/approval-secret/v1"
_SEALED = "_sealed_secret"
_CLAIM = "claim"


def _secret_aad(a: Approval) -> bytes:
    return b"\x00".join((SECRET_KEY_INFO, a.id.encode(), a.operation.encode(),
                         a.requester.encode()))


def new_approval_id() -> str:
    return "ap-" + secrets.token_hex(16)


def _who(ctx: RequestContext) -> Principal:
    if ctx.principal is None:
        raise Unauthenticated("missing or invalid token")
    return ctx.principal


def check_text(value: str | None, what: str, limit: int) -> str:
    text = value or ""
    if len(text) > limit:
        raise InvalidArgument(f"{what} is at most {limit} characters")
    if "\x00" in text:
        raise InvalidArgument(f"{what} must not contain NUL characters")
    return text


class Approvals(ApprovalPolicyAdmin):
    def __init__(self, deps: Deps, authz: Authorizer) -> None:
        self._d = deps
        self._authz = authz
        self._repo = ApprovalRepository()
        self._executors: dict[str, Executor] = {}
        self._claim_checks: dict[str, ClaimCheck] = {}
        self._running: dict[str, str] = {}  # approval id -> operation, while it runs here
        self._lock = threading.Lock()

    # -- executors ------------------------------------------------------------------------
    def register(self, operation: str, fn: Executor) -> None:
        """Register how to run ``operation`` once approved: ``fn(ctx, arguments)`` with
        ``ctx.principal`` the requester, answering a JSON-able mapping. Called in
        build_services only; a second registration of one operation is a bug."""
        if operation in self._executors:
            raise ValueError(f"an executor for '{operation}' is already registered")
        self._executors[operation] = fn

    def register_claim_check(self, operation: str, fn: ClaimCheck) -> None:
        """``fn(ctx, arguments, result)`` runs before the secret of an executed
        ``operation`` is handed over; it raises (FailedPrecondition) when what the
        approvers approved no longer holds."""
        self._claim_checks[operation] = fn

    def registered(self) -> frozenset[str]:
        return frozenset(self._executors)

    @contextmanager
    def _running_as(self, approval_id: str, operation: str) -> Iterator[None]:
        with self._lock:
            self._running[approval_id] = operation
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(approval_id, None)

    # -- the gate -------------------------------------------------------------------------
    def gate(self, ctx: RequestContext, operation: str, arguments: dict[str, Any], *,
             summary: str, namespace: str | None = None, key_id: str | None = None) -> None:
        """Return if the call may proceed now; else store a pending request and raise
        ApprovalRequired (202) naming it. Call it after authorizing and validating the
        call, and never inside a transaction (it opens its own)."""
        who = _who(ctx)
        if who.is_root:
            return  # break-glass: `keykeeper token revoke-root` ends it
        if ctx.approval_id is not None:
            with self._lock:
                running = self._running.get(ctx.approval_id)
            if running == operation:
                return  # this is the approved request, run by _execute
        rule = self.rule_for(operation)
        if rule is None:
            return
        if operation not in self._executors:
            log.error("'%s' is under dual control but has no executor", operation)
            raise Internal(f"'{operation}' is under dual control but this server cannot run "
                           "it after approval")
        if ctx.interface.startswith("kmip"):  # KMIP has no 202: nothing is filed that cannot finish
            raise PermissionDenied(
                f"'{operation}' is under dual control ({rule.required} approval(s)); a KMIP "
                "request cannot wait for approvals: ask over REST, where they are gathered, "
                "or change the approval policy (docs/dual-control.md)")
        check_arguments(arguments)
        text = json.dumps(arguments, sort_keys=True)
        if len(text) > MAX_ARGUMENTS:
            raise InvalidArgument("the request is too large to wait for approval")
        now = self._d.clock()
        approval = Approval(
            id=new_approval_id(), operation=operation, requester=who.name,
            arguments=json.loads(text), summary=check_text(summary, "summary", MAX_SUMMARY),
            namespace=namespace or ctx.namespace, key_id=key_id or ctx.key_id,
            state="pending", required=rule.required, approver_roles=rule.approver_roles,
            created_at=now, expires_at=now + timedelta(seconds=rule.expiry_seconds))
        with self._d.reading() as conn:
            eligible = sum(1 for p in self._d.identity.list_principals(conn)
                           if not p.disabled and p.name != who.name
                           and set(p.roles) & set(rule.approver_roles))
        with self._d.transaction() as conn:
            self._repo.insert(conn, approval)
        ctx.approval_id = approval.id
        ctx.namespace, ctx.key_id = approval.namespace, approval.key_id
        roles = " or ".join(f"'{r}'" for r in rule.approver_roles)
        who_can = (f"{eligible} principal(s) other than you hold it" if eligible
                   else "no principal other than you holds it yet: none can approve it")
        raise ApprovalRequired(
            f"'{operation}' needs {rule.required} approval(s) from principals with role "
            f"{roles} ({who_can}); approval request {approval.id} is pending until "
            f"{approval.expires_at.isoformat(timespec='seconds').replace('+00:00', 'Z')}",
            approval_id=approval.id)

    # -- votes ----------------------------------------------------------------------------
    def approve(self, ctx: RequestContext, approval_id: str,
                comment: str | None = None) -> Approval:
        """Approve; the M-th approval runs the operation, once, as the requester."""
        return self._vote(ctx, approval_id, "approve", comment)

    def reject(self, ctx: RequestContext, approval_id: str,
               comment: str | None = None) -> Approval:
        """Reject: one rejection by an eligible approver rejects the request."""
        return self._vote(ctx, approval_id, "reject", comment)

    def _vote(self, ctx: RequestContext, approval_id: str, decision: str,
              comment: str | None) -> Approval:
        who = self._authz.require(ctx, f"approval.{decision}")
        text = check_text(comment, "comment", MAX_COMMENT)
        _check_id(approval_id)
        ctx.approval_id = approval_id
        now = self._d.clock()
        expired = claimed = False
        with self._d.transaction() as conn:
            a = self._repo.get(conn, approval_id, for_update=True)
            if a is None:
                raise NotFound(f"approval request '{approval_id}' not found")
            ctx.namespace, ctx.key_id = a.namespace, a.key_id
            if a.state == "pending" and a.expires_at <= now:
                expired = self._repo.decide(conn, a.id, from_state="pending",
                                            to_state="expired", at=now)
            else:
                self._check_voter(who, a)
                self._repo.insert_vote(conn, a.id, Vote(principal=who.name, decision=decision,
                                                        comment=text, at=now))
                if decision == "reject":
                    self._repo.decide(conn, a.id, from_state="pending", to_state="rejected",
                                      at=now)
                elif a.approvals + 1 >= a.required:
                    claimed = self._repo.claim(conn, a.id, now)
        if expired:
            raise FailedPrecondition(f"approval request '{approval_id}' has expired")
        if claimed:
            self._execute(ctx, approval_id)
        return self._fetch(approval_id)

    @staticmethod
    def _check_voter(who: Principal, a: Approval) -> None:
        if a.state != "pending":
            raise FailedPrecondition(f"approval request '{a.id}' is {a.state}; it takes no "
                                     "more votes")
        if who.name == a.requester:
            raise PermissionDenied("permission denied: the requester cannot vote on its own "
                                   "approval request")
        if not set(who.roles) & set(a.approver_roles):
            roles = " or ".join(f"'{r}'" for r in a.approver_roles)
            raise PermissionDenied(f"permission denied: voting on this request needs role "
                                   f"{roles}")
        if any(v.principal == who.name for v in a.votes):
            raise AlreadyExists(f"'{who.name}' has already voted on approval request "
                                f"'{a.id}'")

    def _execute(self, ctx: RequestContext, approval_id: str) -> None:
        """Run a request this process has claimed, as its requester; record the outcome."""
        with self._d.reading() as conn:
            a = self._repo.get(conn, approval_id)
            requester = (self._d.identity.get_principal(conn, a.requester)
                         if a is not None else None)
        assert a is not None and a.state == "executing"
        result: dict[str, Any] | None = None
        code: str | None = None
        detail: str | None = None
        if requester is None or requester.disabled:
            code, detail = ("failed_precondition", f"the requester '{a.requester}' no longer "
                            "exists or is disabled")
        else:
            run = RequestContext(interface=ctx.interface, source=ctx.source,
                                 request_id=ctx.request_id, principal=requester,
                                 approval_id=approval_id)
            fn = self._executors[a.operation]
            try:
                with self._running_as(approval_id, a.operation):
                    answer = fn(run, dict(a.arguments))
                # It ran: keep its answer as JSON whatever it holds (times become text);
                # a secret for the requester only wrapped, until claimed.
                public, claimable = split_claimable(answer)
                result = json.loads(json.dumps(withhold(public), default=str))
                if claimable:
                    result[_CLAIM] = "available"
                    result[_SEALED] = self._wrap(a, claimable)
            except KeykeeperError as exc:
                code, detail = exc.code, exc.detail
            except Exception:
                log.exception("approved request %s (%s) failed", approval_id, a.operation)
                code, detail = "internal", "the operation failed unexpectedly"
            ctx.namespace = run.namespace or ctx.namespace
            ctx.key_id = run.key_id or ctx.key_id
            ctx.key_version = run.key_version if run.key_version is not None \
                else ctx.key_version
        # The approving call's audit record: how the execution ended, and as whom it ran.
        ctx.execution = "executed" if code is None else f"failed:{code}"
        ctx.on_behalf_of = a.requester
        with self._d.transaction() as conn:
            self._repo.finish(conn, approval_id, state="executed" if code is None else "failed",
                              at=self._d.clock(), result=result if code is None else None,
                              error_code=code, error_detail=detail)

    # -- reads ----------------------------------------------------------------------------
    def _fetch(self, approval_id: str) -> Approval:
        with self._d.reading() as conn:
            a = self._repo.get(conn, approval_id)
        if a is None:
            raise NotFound(f"approval request '{approval_id}' not found")
        return self._as_seen(a)

    def _as_seen(self, a: Approval) -> Approval:
        """A pending request past its expiry is shown as expired (the sweep records it);
        a wrapped secret is never shown, to anyone."""
        if a.result is not None and _SEALED in a.result:
            a = replace(a, result={k: v for k, v in a.result.items() if k != _SEALED})
        if a.state == "pending" and a.expires_at <= self._d.clock():
            return replace(a, state="expired")
        return a

    # -- claimable secrets ----------------------------------------------------------------
    def _wrap(self, a: Approval, secret: dict[str, str]) -> str:
        key = self._d.custody.derive(SECRET_KEY_INFO)
        blob = aead_seal(key, json.dumps(secret, sort_keys=True).encode(), _secret_aad(a))
        return base64.b64encode(blob).decode("ascii")

    def _unwrap(self, a: Approval, wrapped: Any) -> dict[str, str]:
        key = self._d.custody.derive(SECRET_KEY_INFO)
        try:
            if not isinstance(wrapped, str):
                raise DecryptionFailed()
            value = json.loads(aead_open(key, base64.b64decode(wrapped, validate=True),
                                         _secret_aad(a)))
            if not isinstance(value, dict):
                raise DecryptionFailed()
        except (DecryptionFailed, ValueError):
            log.error("the wrapped secret of approval request %s does not open", a.id)
            raise Internal("the secret of this approval request cannot be opened") from None
        return {str(k): str(v) for k, v in value.items()}

    def claim(self, ctx: RequestContext, approval_id: str) -> dict[str, Any]:
        """Hand the secret an executed request produced (a token made for another
        principal) to its requester, once: the requester alone, still holding the
        operation's permission; the wrapped secret is erased from the row as it is handed
        over. Answers the stored result with the secret fields filled in.

        PermissionDenied for anyone else; FailedPrecondition for a request not executed,
        already claimed, or without a secret; NotFound."""
        who = _who(ctx)
        _check_id(approval_id)
        ctx.approval_id = approval_id
        with self._d.reading() as conn:
            seen = self._repo.get(conn, approval_id)
        check = self._claim_checks.get(seen.operation) if seen is not None else None
        if (seen is not None and check is not None and who.name == seen.requester
                and _SEALED in (seen.result or {})):
            # Outside the transaction: the check may revoke what it finds stale.
            check(ctx, dict(seen.arguments), dict(seen.result or {}))
        with self._d.transaction() as conn:
            a = self._repo.get(conn, approval_id, for_update=True)
            if a is None:
                raise NotFound(f"approval request '{approval_id}' not found")
            ctx.namespace, ctx.key_id = a.namespace, a.key_id
            if who.name != a.requester or who.is_root:
                raise PermissionDenied("permission denied: only the requester of approval "
                                       f"request '{approval_id}' may claim its result")
            state = self._as_seen(a).state
            if state != "executed":
                raise FailedPrecondition(f"approval request '{approval_id}' is {state}; only "
                                         "an executed request has a result to claim")
            stored = dict(a.result or {})
            wrapped = stored.pop(_SEALED, None)
            if wrapped is None:
                if stored.get(_CLAIM) == "claimed":
                    raise FailedPrecondition(
                        f"the result of approval request '{approval_id}' was already "
                        f"claimed (at {stored.get('claimed_at')}); a secret is handed over "
                        "once")
                raise FailedPrecondition(f"approval request '{approval_id}' holds no secret "
                                         "to claim")
            self._authz.require(ctx, a.operation)  # the requester still may do it
            secret = self._unwrap(a, wrapped)
            after = {**stored, _CLAIM: "claimed", "claimed_at": rfc3339(self._d.clock())}
            if not self._repo.swap_result(conn, approval_id, old=dict(a.result or {}),
                                          new=after):
                raise FailedPrecondition(f"the result of approval request '{approval_id}' "
                                         "was already claimed; a secret is handed over once")
        out = {k: v for k, v in stored.items() if k != _CLAIM and v != WITHHELD}
        return {**out, **secret}

    def get(self, ctx: RequestContext, approval_id: str) -> Approval:
        """One request: with ``approval.get``, or one's own request."""
        who = _who(ctx)
        _check_id(approval_id)
        ctx.approval_id = approval_id
        allowed = self._authz.allowed(ctx, "approval.get")
        with self._d.reading() as conn:
            a = self._repo.get(conn, approval_id)
        if not allowed and (a is None or a.requester != who.name):
            raise PermissionDenied(f"permission denied: '{who.name}' lacks 'approval.get'")
        if a is None:
            raise NotFound(f"approval request '{approval_id}' not found")
        ctx.namespace, ctx.key_id = a.namespace, a.key_id
        return self._as_seen(a)

    def list_approvals(self, ctx: RequestContext, *, state: str | None = None,
             requester: str | None = None, page_size: int | None = None,
             page_token: str | None = None) -> tuple[list[Approval], str | None]:
        """Requests, newest first: with ``approval.list`` all of them, else one's own."""
        who = _who(ctx)
        if state is not None and state not in STATES:
            raise InvalidArgument(f"unknown state '{state}'; one of {', '.join(STATES)}")
        if requester is not None and not _ID_NAME.fullmatch(requester):
            raise InvalidArgument("requester must be a principal name")
        size = 100 if page_size is None else page_size
        if not 1 <= size <= 1000:
            raise InvalidArgument("page_size must be between 1 and 1000")
        if not self._authz.allowed(ctx, "approval.list"):
            if requester not in (None, who.name):
                raise PermissionDenied(f"permission denied: '{who.name}' lacks "
                                       "'approval.list' (it may list its own requests)")
            requester = who.name
        with self._d.reading() as conn:
            found, token = self._repo.list_approvals(conn, now=self._d.clock(), state=state,
                                                     requester=requester, page_size=size,
                                                     page_token=page_token)
        return [self._as_seen(a) for a in found], token

    # -- expiry ---------------------------------------------------------------------------
    def expire_due(self) -> int:
        """Record every pending request past its expiry as expired; returns how many."""
        with self._d.transaction() as conn:
            return self._repo.expire_due(conn, self._d.clock())


def _check_id(approval_id: str) -> None:
    if not _ID.fullmatch(approval_id):
        raise InvalidArgument("approval id must match [A-Za-z0-9_-]{1,64}")
