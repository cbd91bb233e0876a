"""The route table drives routing and the OpenAPI document; both stay complete."""

from __future__ import annotations

import inspect

from keykeeper.rest import handlers
from keykeeper.rest.openapi import build_openapi
from keykeeper.rest.routes import ROUTES


def test_every_route_has_a_handler_and_schemas() -> None:
    seen = set()
    for r in ROUTES:
        assert (r.method, r.path) not in seen
        seen.add((r.method, r.path))
        module = inspect.getmodule(r.handler)
        assert module is handlers or (module is not None and module.__name__.startswith(
            "keykeeper.rest.") and module.__name__.endswith("_handlers")), r.path
        assert list(inspect.signature(r.handler).parameters) == ["svc", "ctx", "p", "body"]
        assert r.operation and r.summary
    doc = build_openapi()
    assert doc["openapi"] == "3.1.0"
    for r in ROUTES:
        op = doc["paths"][r.path][r.method.lower()]
        assert str(r.status) in op["responses"]
        assert ("requestBody" in op) == (r.request is not None)
        assert ("security" in op) == r.auth


def test_design_routes_exist() -> None:
    wanted = {("GET", "/v1/sys/health"), ("POST", "/v1/sys/init"), ("POST", "/v1/sys/unseal"),
              ("POST", "/v1/sys/seal"), ("POST", "/v1/keys"), ("GET", "/v1/keys"),
              ("GET", "/v1/keys/{key}"), ("PATCH", "/v1/keys/{key}"),
              ("GET", "/v1/keys/{key}/versions"), ("POST", "/v1/random"),
              ("GET", "/v1/keys/{key}/public-key")}
    wanted |= {("POST", f"/v1/keys/{{key}}/{op}") for op in (
        "rotate", "disable", "enable", "schedule-destruction", "cancel-destruction",
        "compromise", "encrypt", "decrypt", "rewrap", "data-key", "sign", "verify", "mac",
        "verify-mac", "encapsulate", "decapsulate")}
    wanted.add(("POST", "/v1/keys/{key}/versions/{version}/destroy"))
    assert wanted <= {(r.method, r.path) for r in ROUTES}
