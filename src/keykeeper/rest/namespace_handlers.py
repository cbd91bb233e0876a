"""Handlers of the namespace routes: decoded request in, response struct out.

Every check and action happens in service/namespaces.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from keykeeper.rest import namespace_schemas as s
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.identity_views import rfc3339
from keykeeper.service.namespaces import UNSET, Namespace

Params = Mapping[str, str]


def namespace_out(n: Namespace) -> s.NamespaceOut:
    return s.NamespaceOut(name=n.name, description=n.description,
                          allow_legacy_rsa_2048=n.allow_legacy_rsa_2048,
                          rate_limit=n.rate_limit, created_by=n.created_by,
                          created_at=rfc3339(n.created_at) or "", keys=n.keys,
                          rotation_period=n.rotation_period,
                          originator_usage_period=n.originator_usage_period,
                          recipient_usage_period=n.recipient_usage_period)


def create_namespace(svc: Services, ctx: RequestContext, p: Params,
                     body: s.CreateNamespaceRequest) -> s.NamespaceOut:
    return namespace_out(svc.namespaces.create(
        ctx, body.name, description=body.description,
        allow_legacy_rsa_2048=body.allow_legacy_rsa_2048, rate_limit=body.rate_limit,
        rotation_period=body.rotation_period,
        originator_usage_period=body.originator_usage_period,
        recipient_usage_period=body.recipient_usage_period))


def list_namespaces(svc: Services, ctx: RequestContext, p: Params,
                    body: None) -> s.NamespaceList:
    found = svc.namespaces.list_namespaces(ctx)
    return s.NamespaceList(namespaces=[namespace_out(n) for n in found])


def get_namespace(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.NamespaceOut:
    return namespace_out(svc.namespaces.get(ctx, p["name"]))


def update_namespace(svc: Services, ctx: RequestContext, p: Params,
                     body: s.UpdateNamespaceRequest) -> s.NamespaceOut:
    def kept(value: Any) -> Any:
        return UNSET if value is msgspec.UNSET else value

    return namespace_out(svc.namespaces.update(
        ctx, p["name"], description=body.description,
        allow_legacy_rsa_2048=body.allow_legacy_rsa_2048, rate_limit=kept(body.rate_limit),
        rotation_period=kept(body.rotation_period),
        originator_usage_period=kept(body.originator_usage_period),
        recipient_usage_period=kept(body.recipient_usage_period)))


def delete_namespace(svc: Services, ctx: RequestContext, p: Params,
                     body: None) -> s.NamespaceDeleted:
    erased = svc.namespaces.delete(ctx, p["name"])
    return s.NamespaceDeleted(name=erased.name, deleted_at=rfc3339(erased.deleted_at) or "",
                              keys_destroyed=erased.keys_destroyed,
                              versions_destroyed=erased.versions_destroyed)
