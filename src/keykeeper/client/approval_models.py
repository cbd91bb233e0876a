"""Typed results of the dual-control and namespace routes, as frozen msgspec Structs.
Times are timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = [
    "Approval",
    "ApprovalPage",
    "ApprovalPolicy",
    "ApprovalRule",
    "ApprovalVote",
    "Namespace",
    "NamespaceDeletion",
]


class ApprovalVote(msgspec.Struct, frozen=True, kw_only=True):
    """One principal's vote: ``decision`` is ``approve`` or ``reject``."""

    principal: str
    decision: str
    comment: str = ""
    at: datetime


class _ApprovalError(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    detail: str = ""


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """A request for an operation under dual control. ``state`` is pending, executing,
    executed, failed, rejected or expired; ``result`` holds the operation's answer once
    executed, ``error`` (code and detail) why it failed."""

    id: str
    operation: str
    requester: str
    summary: str = ""
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    namespace: str | None = None
    key_id: str | None = None
    state: str
    required: int
    approvals: int = 0
    approver_roles: list[str] = msgspec.field(default_factory=list)
    votes: list[ApprovalVote] = msgspec.field(default_factory=list)
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: _ApprovalError | None = None


class ApprovalPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of ``GET /v1/approvals``, newest first."""

    approvals: list[Approval]
    next_page_token: str | None = None


class ApprovalRule(msgspec.Struct, frozen=True, kw_only=True):
    """``operations`` wait for ``required`` approvals from principals holding one of
    ``approver_roles`` (never the requester); a request expires after ``expiry_seconds``."""

    operations: list[str]
    required: int = 2
    approver_roles: list[str] = msgspec.field(default_factory=lambda: ["key-custodian"])
    expiry_seconds: int = 86400


class ApprovalPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """The dual-control policy: the first rule listing an operation decides."""

    rules: list[ApprovalRule]


class Namespace(msgspec.Struct, frozen=True, kw_only=True):
    """A namespace: a segmentation boundary with its own KEK. ``rate_limit`` is requests
    per second for all callers together (None: none); ``keys`` how many keys it holds
    (None in a list)."""

    name: str
    description: str = ""
    allow_legacy_rsa_2048: bool = False
    rate_limit: float | None = None
    created_by: str = ""
    created_at: datetime
    keys: int | None = None
    rotation_period: int | None = None          # seconds: default of keys created here
    originator_usage_period: int | None = None  # seconds: crypto-period defaults
    recipient_usage_period: int | None = None


class NamespaceDeletion(msgspec.Struct, frozen=True, kw_only=True):
    """The answer of a namespace deletion (crypto-erasure)."""

    name: str
    deleted_at: datetime
    keys_destroyed: int
    versions_destroyed: int


class _Namespaces(msgspec.Struct, frozen=True):
    namespaces: list[Namespace]
