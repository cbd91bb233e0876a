"""The OpenAPI 3.1 document, generated from the route table and the msgspec structs."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from keykeeper import __version__
from keykeeper.rest import schemas as s
from keykeeper.rest.routes import ROUTES

_STATUSES = {400: "invalid_argument or decryption_failed", 401: "unauthenticated",
             404: "not_found", 409: "already_exists or failed_precondition",
             413: "payload_too_large", 503: "sealed or unavailable"}


_INT_QUERY = {"page_size", "version"}


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
        for status, what in _STATUSES.items():
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
