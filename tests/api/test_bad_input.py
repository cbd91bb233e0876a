"""Bad input on every route: each answers a clear 4xx with a stable code, never a 500.

The cases are generated from the route table (rest/routes.py), so a new route is
covered the day it is added.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
import pytest

from keykeeper.rest.routes import ROUTES, Route
from tests.support.server import ServerProcess, b64

KEY_ROUTES = [r for r in ROUTES if "{key}" in r.path]
BODY_ROUTES = [r for r in ROUTES if r.request is not None and r.path != "/v1/sys/init"]
AUTH_ROUTES = [r for r in ROUTES if r.auth]

# A valid body for each data-plane route, so one field at a time can be broken.
VALID: dict[str, dict[str, Any]] = {
    "encrypt": {"plaintext": b64(b"x")},
    "decrypt": {"ciphertext": "keykeeper:v1:k-" + "0" * 32 + ":1:AAAA"},
    "rewrap": {"ciphertext": "keykeeper:v1:k-" + "0" * 32 + ":1:AAAA"},
    "data_key": {},
    "sign": {"message": b64(b"x")},
    "verify": {"message": b64(b"x"), "signature": b64(b"s")},
    "mac": {"message": b64(b"x")},
    "verify_mac": {"message": b64(b"x"), "mac": b64(b"m")},
    "encapsulate": {},
    "decapsulate": {"ciphertext": b64(b"c")},
    "key.compromise": {"reason": "test"},
    "key.compromise_version": {"reason": "test"},
    "key.trim": {"min_available_version": 1},
    "key.import": {"import_token": "kkit.x", "wrapped_key_material": b64(b"w"), "format": "raw"},
    "key.create": {"name": "x"},
    "random": {"length": 16},
    # access control (tests/identity has the rest)
    "principal.create": {"name": "x"},
    "token.create": {"principal": "x"},
    "role.create": {"name": "x", "operations": ["encrypt"]},
    "grant.create": {"grantee": "role:x", "operations": ["encrypt"]},
    "sod_policy.update": {"conflicts": []},
    # dual control and namespaces (tests/approvals has the rest)
    "namespace.create": {"name": "x"},
    "approval_policy.update": {"rules": []},
}
PURPOSE_OF = {"encrypt": "encrypt", "decrypt": "encrypt", "rewrap": "encrypt",
              "data_key": "encrypt", "sign": "sign", "verify": "sign", "mac": "mac",
              "verify_mac": "mac", "encapsulate": "kem", "decapsulate": "kem"}
WRONG_PURPOSE = {"encrypt": "mac", "sign": "encrypt", "mac": "sign", "kem": "encrypt"}


def path_for(route: Route, key: str) -> str:
    return (route.path.replace("{key}", key).replace("{version}", "1")
            .replace("{id}", "ap-" + "0" * 32))


def ids(routes: list[Route]) -> list[str]:
    return [f"{r.method} {r.path}" for r in routes]


@pytest.mark.parametrize("route", BODY_ROUTES, ids=ids(BODY_ROUTES))
def test_malformed_json(live_server: ServerProcess, route: Route) -> None:
    for raw in (b"{", b"[1,2", b"\xff\xfe", b"null", b"[]", b'"text"', b"{\"a\": }"):
        r = live_server.request(route.method, path_for(route, "some-key"), content=raw,
                                headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (raw, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "invalid_argument" and body["status"] == 400
        assert set(body) >= {"type", "title", "status", "detail", "code"}


@pytest.mark.parametrize("route", BODY_ROUTES, ids=ids(BODY_ROUTES))
def test_unknown_and_wrongly_typed_fields(live_server: ServerProcess, route: Route) -> None:
    r = live_server.request(route.method, path_for(route, "some-key"), {"no_such_field": 1})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    fields = route.request.__struct_fields__ if route.request else ()
    for field in fields:
        for wrong in (12345, [1], {"x": {"y": 1}}, True):
            body = {**VALID.get(route.operation, {}), field: wrong}
            try:
                msgspec.convert(body, route.request)
                continue  # the value is of an accepted type for this field
            except msgspec.ValidationError:
                pass
            r = live_server.request(route.method, path_for(route, "some-key"), body)
            assert r.status_code in (400, 404), (field, wrong, r.text)
            assert r.json()["code"] in ("invalid_argument", "not_found")


@pytest.mark.parametrize("operation", sorted(PURPOSE_OF))
def test_bad_base64(live_server: ServerProcess, operation: str) -> None:
    route = next(r for r in ROUTES if r.operation == operation)
    n = secrets.token_hex(4)
    live_server.create_key(n, purpose=PURPOSE_OF[operation])
    for field in VALID[operation]:
        if field == "ciphertext" and operation in ("decrypt", "rewrap"):
            continue  # ciphertext is text, not base64 (covered by decryption tests)
        for bad in ("***", "YQ", "YQ==="):
            r = live_server.post(path_for(route, n), {**VALID[operation], field: bad})
            assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), (field, bad)


@pytest.mark.parametrize("route", KEY_ROUTES, ids=ids(KEY_ROUTES))
def test_unknown_key(live_server: ServerProcess, route: Route) -> None:
    for ref in ("no-such-key", "nowhere:no-such-key", "k-" + "a" * 32):
        body = VALID.get(route.operation, {}) if route.request else None
        r = live_server.request(route.method, path_for(route, ref), body)
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), (ref, r.text)
    bad = live_server.request(route.method, path_for(route, "bad%20name!"),
                              VALID.get(route.operation, {}) if route.request else None)
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_argument")


@pytest.mark.parametrize("operation", sorted(PURPOSE_OF))
def test_wrong_purpose(live_server: ServerProcess, operation: str) -> None:
    route = next(r for r in ROUTES if r.operation == operation)
    n = secrets.token_hex(4)
    live_server.create_key(n, purpose=WRONG_PURPOSE[PURPOSE_OF[operation]])
    r = live_server.post(path_for(route, n), VALID[operation])
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition"), r.text


@pytest.mark.parametrize("operation", sorted(PURPOSE_OF))
def test_wrong_state(live_server: ServerProcess, operation: str) -> None:
    route = next(r for r in ROUTES if r.operation == operation)
    n = secrets.token_hex(4)
    live_server.create_key(n, purpose=PURPOSE_OF[operation])
    live_server.post(f"/v1/keys/{n}/disable")
    r = live_server.post(path_for(route, n), VALID[operation])
    if operation in ("decrypt", "rewrap"):
        # The ciphertext names another key: the uniform error comes first.
        assert r.json()["code"] in ("failed_precondition", "decryption_failed")
    else:
        assert (r.status_code, r.json()["code"]) == (409, "failed_precondition"), r.text


@pytest.mark.parametrize("route", BODY_ROUTES, ids=ids(BODY_ROUTES))
def test_oversized_body(live_server: ServerProcess, route: Route) -> None:
    big = b'{"x":"' + b"A" * (4 * 1024 * 1024) + b'"}'
    r = live_server.request(route.method, path_for(route, "some-key"), content=big,
                            headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")


def test_oversized_plaintext_item(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n)
    r = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x" * (64 * 1024 + 1))})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    ok = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x" * 64 * 1024)})
    assert ok.status_code == 200


@pytest.mark.parametrize("route", AUTH_ROUTES, ids=ids(AUTH_ROUTES))
def test_missing_or_bad_token(live_server: ServerProcess, route: Route) -> None:
    body = VALID.get(route.operation, {}) if route.request else None
    for token in ("", "kk.not-a-real-token", "x" * 600):
        r = live_server.request(route.method, path_for(route, "some-key"), body, token=token)
        assert (r.status_code, r.json()["code"]) == (401, "unauthenticated"), r.text
        assert r.json()["detail"] == "missing or invalid token"


def test_unknown_route_and_method(live_server: ServerProcess) -> None:
    r = live_server.get("/v1/nothing-here")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = live_server.request("DELETE", "/v1/keys")
    assert r.status_code == 405 and r.json()["code"] == "invalid_argument"


def test_bad_query_parameters(live_server: ServerProcess) -> None:
    for q in ("page_size=0", "page_size=5000", "page_size=x", "state=melted", "purpose=fly",
              "page_token=%%%", "page_token=bm90anNvbg==", "label=novalue", "namespace=a%20b"):
        r = live_server.get(f"/v1/keys?{q}")
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), q
    n = secrets.token_hex(4)
    live_server.create_key(n, algorithm="ED25519")
    for q in ("version=x", "version=99"):
        r = live_server.get(f"/v1/keys/{n}/public-key?{q}")
        assert r.status_code in (400, 404) and r.json()["code"] in ("invalid_argument", "not_found")


def test_bad_create_arguments(live_server: ServerProcess) -> None:
    cases: list[dict[str, Any]] = [
        {"name": ""}, {"name": "a" * 129}, {"name": "sp ace"}, {"name": "x", "purpose": "fly"},
        {"name": "x", "rotation_period": "10m"}, {"name": "x", "rotation_period": "soon"},
        {"name": "x", "rotation_period": 0}, {"name": "x", "labels": {"bad key": "v"}},
        {"name": "x", "protection": "tpm"}, {"name": "x", "namespace": "a:b"},
        {"name": "x", "description": "d" * 2000}, {},
    ]
    for body in cases:
        r = live_server.post("/v1/keys", body)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), body
    # protection "hsm" is valid input; this server has no HSM (docs/hsm.md)
    r = live_server.post("/v1/keys", {"name": "x", "protection": "hsm"})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")


def test_key_version_zero_and_negative(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n)
    for v in (0, -1):
        r = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x"), "key_version": v})
        assert r.json()["code"] == "invalid_argument"
    r = live_server.post(f"/v1/keys/{n}/versions/0/destroy")
    assert r.json()["code"] == "invalid_argument"
    r = live_server.post(f"/v1/keys/{n}/versions/abc/destroy")
    assert r.json()["code"] == "invalid_argument"


def test_caller_supplied_nonce_refused(live_server: ServerProcess) -> None:
    n = secrets.token_hex(4)
    live_server.create_key(n)
    r = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x"), "nonce": b64(b"n" * 12)})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
