"""Repository of approval requests (dual control) and their votes.

Every function takes an open ``Connection``; the service layer owns the transaction.
The one write that decides who runs an approved request is :meth:`ApprovalRepository.claim`,
a conditional ``UPDATE ... WHERE state = 'pending'``: of any number of concurrent callers,
exactly one sees a row change.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from keykeeper.errors import AlreadyExists, InvalidArgument
from keykeeper.store.convert import utc
from keykeeper.store.schema import approval_votes, approvals

__all__ = ["Approval", "ApprovalRepository", "Vote"]


@dataclass(frozen=True, slots=True)
class Vote:
    principal: str
    decision: str              # "approve" | "reject"
    comment: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Approval:
    """One request for an operation under dual control, as stored."""

    id: str
    operation: str
    requester: str
    arguments: dict[str, Any]
    summary: str
    namespace: str | None
    key_id: str | None
    state: str                 # pending|executing|executed|failed|rejected|expired
    required: int
    approver_roles: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    result: dict[str, Any] | None = None
    error_code: str | None = None
    error_detail: str | None = None
    votes: tuple[Vote, ...] = ()

    @property
    def approvals(self) -> int:
        return sum(1 for v in self.votes if v.decision == "approve")


def _ts(value: datetime | None) -> datetime:
    out = utc(value)
    assert out is not None
    return out


def _approval(r: Any, votes: tuple[Vote, ...]) -> Approval:
    return Approval(
        id=r.id, operation=r.operation, requester=r.requester,
        arguments=json.loads(r.arguments), summary=r.summary, namespace=r.namespace,
        key_id=r.key_id, state=r.state, required=r.required,
        approver_roles=tuple(json.loads(r.approver_roles)), created_at=_ts(r.created_at),
        expires_at=_ts(r.expires_at), decided_at=utc(r.decided_at),
        result=json.loads(r.result) if r.result is not None else None,
        error_code=r.error_code, error_detail=r.error_detail, votes=votes)


def _encode_token(created_at: datetime, approval_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), approval_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        if len(token) > 512:
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, str) for v in value)):
            raise ValueError
        when = datetime.fromisoformat(value[0])
        if when.tzinfo is None:
            raise ValueError
        return when, value[1]
    except (ValueError, TypeError, RecursionError, UnicodeError):
        raise InvalidArgument("page_token is not valid") from None


class ApprovalRepository:
    # -- reads ----------------------------------------------------------------------------
    def _votes(self, conn: Connection, ids: list[str]) -> dict[str, list[Vote]]:
        out: dict[str, list[Vote]] = {i: [] for i in ids}
        if ids:
            q = (select(approval_votes).where(approval_votes.c.approval_id.in_(ids))
                 .order_by(approval_votes.c.at, approval_votes.c.principal))
            for v in conn.execute(q):
                out[v.approval_id].append(Vote(principal=v.principal, decision=v.decision,
                                               comment=v.comment, at=_ts(v.at)))
        return out

    def get(self, conn: Connection, approval_id: str, *,
            for_update: bool = False) -> Approval | None:
        q = select(approvals).where(approvals.c.id == approval_id)
        if for_update:
            q = q.with_for_update()
        r = conn.execute(q).first()
        if r is None:
            return None
        return _approval(r, tuple(self._votes(conn, [r.id])[r.id]))

    def list_approvals(self, conn: Connection, *, now: datetime, state: str | None = None,
             requester: str | None = None, page_size: int = 100,
             page_token: str | None = None) -> tuple[list[Approval], str | None]:
        """Newest first. ``state`` is the state a caller sees: a pending request past its
        expiry counts as ``expired`` even before the sweep records it."""
        q = select(approvals)
        if state == "pending":
            q = q.where(approvals.c.state == "pending", approvals.c.expires_at > now)
        elif state == "expired":
            q = q.where(or_(approvals.c.state == "expired",
                            and_(approvals.c.state == "pending",
                                 approvals.c.expires_at <= now)))
        elif state is not None:
            q = q.where(approvals.c.state == state)
        if requester is not None:
            q = q.where(approvals.c.requester == requester)
        if page_token:
            when, last = _decode_token(page_token)
            q = q.where(or_(approvals.c.created_at < when,
                            and_(approvals.c.created_at == when, approvals.c.id < last)))
        q = q.order_by(approvals.c.created_at.desc(), approvals.c.id.desc()).limit(page_size + 1)
        rows = list(conn.execute(q))
        more = len(rows) > page_size
        rows = rows[:page_size]
        votes = self._votes(conn, [r.id for r in rows])
        found = [_approval(r, tuple(votes[r.id])) for r in rows]
        token = _encode_token(found[-1].created_at, found[-1].id) if more and found else None
        return found, token

    # -- writes ---------------------------------------------------------------------------
    def insert(self, conn: Connection, a: Approval) -> None:
        try:
            conn.execute(insert(approvals).values(
                id=a.id, operation=a.operation, requester=a.requester,
                arguments=json.dumps(a.arguments, sort_keys=True), summary=a.summary,
                namespace=a.namespace, key_id=a.key_id, state=a.state, required=a.required,
                approver_roles=json.dumps(list(a.approver_roles)), created_at=a.created_at,
                expires_at=a.expires_at))
        except IntegrityError:
            raise AlreadyExists(f"approval request '{a.id}' already exists") from None

    def insert_vote(self, conn: Connection, approval_id: str, vote: Vote) -> None:
        try:
            conn.execute(insert(approval_votes).values(
                approval_id=approval_id, principal=vote.principal, decision=vote.decision,
                comment=vote.comment, at=vote.at))
        except IntegrityError:
            raise AlreadyExists(f"'{vote.principal}' has already voted on approval request "
                                f"'{approval_id}'") from None

    def claim(self, conn: Connection, approval_id: str, at: datetime) -> bool:
        """Move a pending request to ``executing``; True for the one caller that did."""
        done = conn.execute(update(approvals)
                            .where(approvals.c.id == approval_id, approvals.c.state == "pending")
                            .values(state="executing", decided_at=at))
        return done.rowcount == 1

    def decide(self, conn: Connection, approval_id: str, *, from_state: str, to_state: str,
               at: datetime) -> bool:
        done = conn.execute(update(approvals)
                            .where(approvals.c.id == approval_id,
                                   approvals.c.state == from_state)
                            .values(state=to_state, decided_at=at))
        return done.rowcount == 1

    def finish(self, conn: Connection, approval_id: str, *, state: str, at: datetime,
               result: dict[str, Any] | None, error_code: str | None,
               error_detail: str | None) -> None:
        conn.execute(update(approvals)
                     .where(approvals.c.id == approval_id, approvals.c.state == "executing")
                     .values(state=state, decided_at=at,
                             result=json.dumps(result, sort_keys=True) if result is not None
                             else None,
                             error_code=error_code, error_detail=error_detail))

    def swap_result(self, conn: Connection, approval_id: str, *, old: dict[str, Any],
                    new: dict[str, Any]) -> bool:
        """Replace an executed request's result, only if it is still ``old``: of any number
        of concurrent callers, exactly one sees True (a claim happens once)."""
        done = conn.execute(update(approvals)
                            .where(approvals.c.id == approval_id,
                                   approvals.c.state == "executed",
                                   approvals.c.result == json.dumps(old, sort_keys=True))
                            .values(result=json.dumps(new, sort_keys=True)))
        return done.rowcount == 1

    def expire_due(self, conn: Connection, now: datetime) -> int:
        done = conn.execute(update(approvals)
                            .where(approvals.c.state == "pending", approvals.c.expires_at <= now)
                            .values(state="expired", decided_at=now))
        return int(done.rowcount)
