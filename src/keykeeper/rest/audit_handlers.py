"""Handlers of the audit routes: decoded request in, response struct out.

The audit trail itself lives in service/audit.py; these check the caller's permission
(``audit.read``, ``audit.verify``) and translate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import msgspec

from keykeeper.domain.durations import parse_duration
from keykeeper.errors import InvalidArgument
from keykeeper.rest import audit_schemas as s
from keykeeper.service.audit_db import AuditFilter
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services

Params = Mapping[str, str]

_KEY_ID = re.compile(r"k-[0-9a-f]{32}")
_OPERATION = re.compile(r"[a-z_]{1,32}(\.[a-z_]{1,32})?\*?|[a-z_]{1,32}\.\*|\*")
_WORD = re.compile(r"[a-z_]{1,64}")
_CHAIN = re.compile(r"[A-Za-z0-9._~@:-]{1,128}")
_REQUEST_ID = re.compile(r"[0-9a-f]{1,64}")
_APPROVAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXECUTION = re.compile(r"executed|failed(:[a-z_]{1,64})?")
_decode_record = msgspec.json.Decoder(s.AuditRecord)


def _param(p: Params, name: str, pattern: re.Pattern[str]) -> str | None:
    value = p.get(name) or None
    if value is not None and not pattern.fullmatch(value):
        raise InvalidArgument(f"{name} is not valid")
    return value


def _time(p: Params, name: str, now: datetime) -> datetime | None:
    """RFC 3339 (a zone is required), or a duration before now (``15m``, ``24h``, ``7d``)."""
    value = p.get(name) or None
    if value is None:
        return None
    if value[0].isdigit() and value[-1] in "smhdw" and value[:-1].isdigit():
        return now - timedelta(seconds=parse_duration(value, what=name))
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be an RFC 3339 time or a duration such as "
                              "'1h'") from None
    if when.tzinfo is None:
        raise InvalidArgument(f"{name} must carry a time zone (e.g. Z)")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise InvalidArgument(f"{name} must be between years 1 and 9999 in UTC") from None


def _positive(p: Params, name: str) -> int | None:
    raw = p.get(name) or None
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) < 1:
        raise InvalidArgument(f"{name} must be a positive integer")
    return int(raw)


def _key_id(svc: Services, ctx: RequestContext, p: Params) -> str | None:
    ref = p.get("key") or None
    if ref is None or _KEY_ID.fullmatch(ref):
        return ref
    return svc.lookup.get(ctx, ref).id


def search(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.AuditPage:
    svc.authz.require(ctx, "audit.read")
    order = p.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidArgument("order must be asc or desc")
    now = datetime.now(UTC)
    flt = AuditFilter(
        principal=p.get("principal") or None, key_id=_key_id(svc, ctx, p),
        operation=_param(p, "operation", _OPERATION), outcome=_param(p, "outcome", _WORD),
        chain=_param(p, "chain", _CHAIN), request_id=_param(p, "request_id", _REQUEST_ID),
        approval_id=_param(p, "approval_id", _APPROVAL_ID),
        execution=_param(p, "execution", _EXECUTION),
        since=_time(p, "since", now), until=_time(p, "until", now))
    rows, token = svc.audit.query(flt, _positive(p, "page_size"), p.get("page_token") or None,
                                  newest_first=order == "desc")
    return s.AuditPage(records=[_decode_record.decode(r.record) for r in rows],
                       next_page_token=token)


def head(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.AuditHead:
    svc.authz.require(ctx, "audit.read")
    chain = _param(p, "chain", _CHAIN)
    seq = _positive(p, "seq")
    h = svc.audit.head(chain) if seq is None else svc.audit.record_hash(chain, seq)
    return s.AuditHead(chain=h.chain, seq=h.seq, hash=h.hash, checkpoint=h.checkpoint)


def public_key(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.AuditPublicKey:
    svc.authz.require(ctx, "audit.read")
    return s.AuditPublicKey(public_key=svc.audit.public_key_pem())


def hash_value(svc: Services, ctx: RequestContext, p: Params,
               body: s.AuditHashRequest) -> s.AuditHashResponse:
    svc.authz.require(ctx, "audit.read")
    return s.AuditHashResponse(hmac=svc.audit.hash_value(body.value))


def checkpoint(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.AuditHead:
    svc.authz.require(ctx, "audit.verify")
    h = svc.audit.checkpoint_now(ctx)
    return s.AuditHead(chain=h.chain, seq=h.seq, hash=h.hash, checkpoint=h.checkpoint)


def verify(svc: Services, ctx: RequestContext, p: Params,
           body: s.AuditVerifyRequest) -> s.AuditVerifyReport:
    svc.authz.require(ctx, "audit.verify")
    report = svc.audit.verify(from_checkpoint=body.from_checkpoint)
    return msgspec.convert(report.to_builtins(), s.AuditVerifyReport)
