"""Handlers of key import and export (rest/transfer_routes.py): decoded request struct in,
response struct out. Every check happens in service/ (service/key_import.py,
service/key_export.py)."""

from __future__ import annotations

from collections.abc import Mapping

from keykeeper.rest import schemas as ks
from keykeeper.rest import transfer_schemas as s
from keykeeper.rest.convert import key_out
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.identity_views import rfc3339

Params = Mapping[str, str]


def import_parameters(svc: Services, ctx: RequestContext, p: Params,
                      body: s.ImportParametersRequest) -> s.ImportParametersResponse:
    made = svc.keys.import_parameters(ctx, p["key"], wrapping_algorithm=body.wrapping_algorithm,
                                      expires_in=body.expires_in)
    return s.ImportParametersResponse(
        key_id=made.key_id, import_token=made.import_token, public_key=made.public_key,
        wrapping_algorithm=made.wrapping_algorithm, expires_at=rfc3339(made.expires_at) or "",
        wrapping_key_fingerprint=made.wrapping_key_fingerprint)


def import_material(svc: Services, ctx: RequestContext, p: Params,
                    body: s.ImportRequest) -> ks.KeyOut:
    key = svc.keys.import_material(ctx, p["key"], import_token=body.import_token,
                                   wrapped_key_material=body.wrapped_key_material,
                                   format=body.format)
    return key_out(key, svc.keys.periods_of([key])[key.id])


def export(svc: Services, ctx: RequestContext, p: Params,
           body: s.ExportRequest) -> s.ExportResponse:
    out = svc.keys.export(ctx, p["key"], version=body.version,
                          wrapping_public_key=body.wrapping_public_key,
                          wrapping_key=body.wrapping_key,
                          wrapping_algorithm=body.wrapping_algorithm)
    return s.ExportResponse(key_id=out.key_id, key_version=out.key_version,
                            wrapped_key_material=out.wrapped_key_material, format=out.format,
                            wrapping_algorithm=out.wrapping_algorithm,
                            wrapping_key_fingerprint=out.wrapping_key_fingerprint,
                            wrapping_key=out.wrapping_key,
                            wrapping_key_version=out.wrapping_key_version)
