"""Handlers of the dual-control routes: decoded request in, response struct out.

Every check and action happens in service/approvals.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from keykeeper.errors import InvalidArgument
from keykeeper.rest import approval_schemas as s
from keykeeper.rest.identity_schemas import TokenCreated
from keykeeper.rest.schemas import Empty
from keykeeper.service.approval_policy import ApprovalPolicy
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.identity_views import rfc3339
from keykeeper.store.approvals import Approval

Params = Mapping[str, str]


def _ts(value: datetime) -> str:
    out = rfc3339(value)
    assert out is not None
    return out


def approval_out(a: Approval) -> s.ApprovalOut:
    return s.ApprovalOut(
        id=a.id, operation=a.operation, requester=a.requester, summary=a.summary,
        arguments=dict(a.arguments), namespace=a.namespace, key_id=a.key_id, state=a.state,
        required=a.required, approvals=a.approvals, approver_roles=list(a.approver_roles),
        votes=[s.VoteOut(principal=v.principal, decision=v.decision, comment=v.comment,
                         at=_ts(v.at)) for v in a.votes],
        created_at=_ts(a.created_at), expires_at=_ts(a.expires_at),
        decided_at=rfc3339(a.decided_at), result=a.result,
        error=(s.ApprovalError(code=a.error_code, detail=a.error_detail or "")
               if a.error_code else None))


def policy_out(policy: ApprovalPolicy) -> s.ApprovalPolicyBody:
    return msgspec.convert(policy.to_json(), s.ApprovalPolicyBody)


def _page_size(p: Params) -> int | None:
    raw = p.get("page_size")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise InvalidArgument("page_size must be a positive integer")
    return int(raw)


def list_approvals(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.ApprovalList:
    found, token = svc.approvals.list_approvals(ctx, state=p.get("state") or None,
                                      requester=p.get("requester") or None,
                                      page_size=_page_size(p),
                                      page_token=p.get("page_token") or None)
    return s.ApprovalList(approvals=[approval_out(a) for a in found], next_page_token=token)


def get_approval(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.ApprovalOut:
    return approval_out(svc.approvals.get(ctx, p["id"]))


def approve(svc: Services, ctx: RequestContext, p: Params, body: s.VoteRequest) -> s.ApprovalOut:
    return approval_out(svc.approvals.approve(ctx, p["id"], body.comment))


def reject(svc: Services, ctx: RequestContext, p: Params, body: s.VoteRequest) -> s.ApprovalOut:
    return approval_out(svc.approvals.reject(ctx, p["id"], body.comment))


def claim(svc: Services, ctx: RequestContext, p: Params, body: Empty) -> TokenCreated:
    return msgspec.convert(svc.approvals.claim(ctx, p["id"]), TokenCreated)


def get_policy(svc: Services, ctx: RequestContext, p: Params,
               body: None) -> s.ApprovalPolicyBody:
    return policy_out(svc.approvals.get_policy(ctx))


def set_policy(svc: Services, ctx: RequestContext, p: Params,
               body: s.ApprovalPolicyBody) -> s.ApprovalPolicyBody:
    return policy_out(svc.approvals.set_policy(ctx, msgspec.to_builtins(body)))
