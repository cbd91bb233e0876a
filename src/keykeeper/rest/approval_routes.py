"""The dual-control rows of the route table (rest/routes.py appends them): approval
requests and the approval policy.

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import approval_handlers as h
from keykeeper.rest import approval_schemas as s
from keykeeper.rest.identity_schemas import TokenCreated
from keykeeper.rest.schemas import Empty

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["approval_routes"]

A = "/v1/approvals/{id}"
POLICY = "/v1/policies/approval"


def approval_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("GET", "/v1/approvals", "approval.list", h.list_approvals, None, s.ApprovalList,
              "List approval requests, newest first (filters: state, requester; paginated); "
              "without approval.list, the caller's own",
              query=("state", "requester", "page_size", "page_token")),
        Route("GET", A, "approval.get", h.get_approval, None, s.ApprovalOut,
              "Show an approval request with its votes and, once run, its result"),
        Route("POST", A + "/approve", "approval.approve", h.approve, s.VoteRequest,
              s.ApprovalOut, "Approve; the M-th approval runs the operation once, as the "
              "requester"),
        Route("POST", A + "/reject", "approval.reject", h.reject, s.VoteRequest, s.ApprovalOut,
              "Reject; one rejection rejects the request"),
        Route("POST", A + "/claim", "approval.claim", h.claim, Empty, TokenCreated,
              "Claim the secret an executed request made (a token for another principal): "
              "the requester only, once"),
        Route("GET", POLICY, "approval_policy.get", h.get_policy, None, s.ApprovalPolicyBody,
              "The dual-control policy"),
        Route("PUT", POLICY, "approval_policy.update", h.set_policy, s.ApprovalPolicyBody,
              s.ApprovalPolicyBody,
              "Replace the dual-control policy (itself under dual control by default)"),
    )
