"""Handlers of the compromise-response and destruction-receipt routes
(rest/compromise_routes.py): decoded request struct in, response struct out. Every check
happens in service/ (``svc.compromise``, ``svc.bulk_revoke``, ``svc.destruction``)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from keykeeper.errors import InvalidArgument
from keykeeper.rest import compromise_schemas as s
from keykeeper.service.bulk_revoke import RevokeQuery
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.identity_views import rfc3339

Params = Mapping[str, str]


def _version(p: Params, *, required: bool) -> int | None:
    raw = p.get("version")
    if raw is None or raw == "":
        if required:
            raise InvalidArgument("version must be a positive integer")
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        raise InvalidArgument("version must be a positive integer")
    return int(raw)


def compromise_version(svc: Services, ctx: RequestContext, p: Params,
                       body: s.CompromiseVersionRequest) -> s.CompromisedVersion:
    version = _version(p, required=True)
    assert version is not None
    key = svc.compromise.compromise_version(ctx, p["key"], version, body.reason,
                                            compromise_time=body.compromise_time)
    v = key.version(version)
    assert v is not None
    return s.CompromisedVersion(key_id=key.id, key=key.ref, version=version, state=str(v.state),
                                compromised_at=rfc3339(v.compromised_at),
                                compromise_reason=v.compromise_reason)


def compromise_report(svc: Services, ctx: RequestContext, p: Params,
                      body: None) -> s.CompromiseReport:
    report = svc.compromise.report(ctx, p["key"], _version(p, required=False))
    return msgspec.convert(report, s.CompromiseReport)


def receipts(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.ReceiptList:
    return s.ReceiptList(receipts=svc.destruction.receipts(ctx, p["key"]))


def receipt_key(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.ReceiptKey:
    return s.ReceiptKey(public_key=svc.destruction.public_key_pem())


def bulk_revoke(svc: Services, ctx: RequestContext, p: Params,
                body: s.BulkRevokeRequest) -> s.BulkRevokeResponse:
    query = RevokeQuery(namespace=body.namespace, created_by=body.created_by,
                        algorithm=body.algorithm, created_before=body.created_before)
    answer = svc.bulk_revoke.revoke(ctx, query, body.reason, dry_run=body.dry_run)
    return msgspec.convert(answer, s.BulkRevokeResponse)
