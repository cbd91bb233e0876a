"""msgspec structs of the dual-control routes (rest/approval_routes.py): approval requests,
votes and the approval policy. Times are RFC 3339 UTC strings."""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field


class VoteRequest(Struct, forbid_unknown_fields=True):
    comment: str | None = None


class VoteOut(Struct):
    principal: str
    decision: str                     # "approve" | "reject"
    comment: str
    at: str


class ApprovalError(Struct):
    code: str
    detail: str


class ApprovalOut(Struct):
    id: str
    operation: str
    requester: str
    summary: str
    arguments: dict[str, Any]
    namespace: str | None
    key_id: str | None
    state: str                        # pending|executing|executed|failed|rejected|expired
    required: int                     # approvals needed (the requester never counts)
    approvals: int                    # approvals so far
    approver_roles: list[str]
    votes: list[VoteOut]
    created_at: str
    expires_at: str
    decided_at: str | None
    result: dict[str, Any] | None     # executed: the operation's answer (secrets withheld;
                                      # "claim": "available" until the requester claims it)
    error: ApprovalError | None       # failed: why


class ApprovalList(Struct, omit_defaults=True):
    approvals: list[ApprovalOut]
    next_page_token: str | None = None


class ApprovalRuleBody(Struct, forbid_unknown_fields=True):
    operations: list[str]
    required: int = 2
    approver_roles: list[str] = field(default_factory=lambda: ["key-custodian"])
    expiry_seconds: int = 86400


class ApprovalPolicyBody(Struct, forbid_unknown_fields=True):
    rules: list[ApprovalRuleBody]
