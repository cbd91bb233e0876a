"""Handlers of the monitoring routes (rest/alert_routes.py): alerts and key usage.
Every check happens in service/ (``svc.alerts``, ``svc.monitoring``)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from keykeeper.rest import alert_schemas as s
from keykeeper.rest.audit_handlers import _positive, _time
from keykeeper.rest.schemas import Empty
from keykeeper.service.alerts import alert_view
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.store.alerts import AlertFilter

Params = Mapping[str, str]


def list_alerts(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.AlertList:
    flt = AlertFilter(state=p.get("state") or None, rule=(p.get("rule") or None),
                      severity=p.get("severity") or None,
                      since=_time(p, "since", svc.deps.clock()))
    rows, token = svc.alerts.list(ctx, flt, _positive(p, "page_size"),
                                  p.get("page_token") or None)
    return s.AlertList(alerts=[msgspec.convert(alert_view(r), s.AlertOut) for r in rows],
                       next_page_token=token)


def acknowledge(svc: Services, ctx: RequestContext, p: Params, body: Empty) -> s.AlertOut:
    return msgspec.convert(alert_view(svc.alerts.acknowledge(ctx, p["id"])), s.AlertOut)


def key_usage(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.KeyUsage:
    return msgspec.convert(svc.monitoring.key_usage(ctx, p["key"]), s.KeyUsage)
