"""The OpenAPI 3.1 document, generated from the route table and the msgspec structs."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from keykeeper import __version__
from keykeeper.rest import schemas as s
from keykeeper.rest.routes import ROUTES
from keykeeper.service.approval_policy import DEFAULT_OPERATIONS

# Operations that may answer 202 approval_required: the default dual-control policy, plus
# principal.update (gated when roles or metadata change).
GATED = frozenset(DEFAULT_OPERATIONS) | {"principal.update"}

_STATUSES = {400: "invalid_argument or decryption_failed", 401: "unauthenticated",
             404: "not_found", 409: "already_exists or failed_precondition",
             413: "payload_too_large", 503: "sealed or unavailable"}


_INT_QUERY = {"page_size", "version", "seq"}


def build_openapi() -> dict[str, Any]:
    types: list[Any] = [s.Problem]
    for r in ROUTES:
        if r.request is not None:
            types.append(r.request)
        types.extend(r.response if isinstance(r.response, tuple) else (r.response,))
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(types, schemas, strict=True))

    def schema_of(t: Any) -> dict[str, Any]:
        if isinstance(t, tuple):
            return {"oneOf": [by_type[x] for x in t]}
        result: dict[str, Any] = by_type[t]
        return result

    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "operationId": r.operation.replace(".", "_"), "summary": r.summary,
            "responses": {str(r.status): {"description": "success", "content": {
                "application/json": {"schema": schema_of(r.response)}}}},
        }
        statuses = dict(_STATUSES)
        if r.auth:
            statuses |= {403: "permission_denied (names the missing permission)",
                         429: "resource_exhausted (a rate limit; Retry-After header)"}
        if r.operation in GATED:
            statuses[202] = ("approval_required: waits for M-of-N approval; the problem "
                             "body's approval_id names the request")
        for status, what in sorted(statuses.items()):
            op["responses"][str(status)] = {"description": what, "content": {
                "application/problem+json": {"schema": by_type[s.Problem]}}}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", r.path)]
        params += [{"name": n, "in": "query", "required": False,
                    "schema": {"type": "integer" if n in _INT_QUERY else "string"}}
                   for n in r.query]
        if params:
            op["parameters"] = params
        if r.request is not None:
            op["requestBody"] = {"required": r.request is not s.Empty, "content": {
                "application/json": {"schema": by_type[r.request]}}}
        if r.auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "keykeeper", "version": __version__,
                 "description": "Key management service: REST API v1"},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
