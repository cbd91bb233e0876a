"""Namespaces are walls: a principal with every permission in namespace A runs no
operation on any key of namespace B, by id or by name, and never sees B's keys listed.

Every key route of the route table (rest/routes.py) is tried on every key of B, so a
route added later is covered the day it is added.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from keykeeper.rest.routes import ROUTES, Route
from tests.api.test_bad_input import VALID
from tests.support.principals import add_principal, add_role
from tests.support.server import ServerProcess, b64

KEY_ROUTES = [r for r in ROUTES if "{key}" in r.path]
B_KEYS = {  # one key of every purpose in namespace B
    "enc": {"purpose": "encrypt"},
    "sig": {"purpose": "sign", "algorithm": "ecdsa-p256-sha256"},
    "rsa": {"purpose": "encrypt", "algorithm": "rsa-oaep-3072-sha256"},
    "mac": {"purpose": "mac"},
    "kem": {"purpose": "kem"},
}
BODY: dict[str, dict[str, Any]] = {**VALID, "key.schedule_destruction": {"pending_days": 7},
                                   "key.update": {"description": "x"}}


@pytest.fixture(scope="module")
def walls(live_server: ServerProcess) -> dict[str, Any]:
    tag = secrets.token_hex(3)
    ns_a, ns_b = f"a-{tag}", f"b-{tag}"
    for ns in (ns_a, ns_b):
        r = live_server.post("/v1/namespaces", {"name": ns})
        assert r.status_code == 201, r.text
    keys = {}
    for short, fields in B_KEYS.items():
        k = live_server.create_key(short, namespace=ns_b, **fields)
        keys[short] = k
        live_server.create_key(short, namespace=ns_a, **fields)  # same names in A
    role = f"all-in-a-{tag}"
    add_role(live_server.database_url, role, ("*",))
    token = add_principal(live_server.database_url, f"pa-{tag}", (role,),
                          grants=({"operations": ["*"], "namespace": ns_a},))
    enc_b = live_server.post(f"/v1/keys/{keys['enc']['id']}/encrypt",
                             {"plaintext": b64(b"secret")}).json()["ciphertext"]
    return {"a": ns_a, "b": ns_b, "keys": keys, "token": token, "ct": enc_b}


def _refs(walls: dict[str, Any]) -> list[str]:
    out = []
    for short, key in walls["keys"].items():
        out += [key["id"], f"{walls['b']}:{short}"]
    return out


@pytest.mark.parametrize("route", KEY_ROUTES, ids=[f"{r.method} {r.path}" for r in KEY_ROUTES])
def test_no_operation_reaches_namespace_b(live_server: ServerProcess, walls: dict[str, Any],
                                          route: Route) -> None:
    body = dict(BODY.get(route.operation, {}))
    if route.operation in ("decrypt", "rewrap"):
        body["ciphertext"] = walls["ct"]
    for ref in _refs(walls):
        path = route.path.replace("{key}", ref).replace("{version}", "1")
        r = live_server.request(route.method, path, body if route.request else None,
                                token=walls["token"])
        assert r.status_code == 404 and r.json()["code"] == "not_found", (ref, r.text)
        assert walls["b"] not in r.json()["detail"] or ref.startswith(walls["b"])


def test_same_operations_work_in_namespace_a(live_server: ServerProcess,
                                             walls: dict[str, Any]) -> None:
    """The wall is the namespace, not a lack of permission: A's keys answer."""
    r = live_server.post(f"/v1/keys/{walls['a']}:enc/encrypt", {"plaintext": b64(b"x")},
                         token=walls["token"])
    assert r.status_code == 200, r.text
    r = live_server.post(f"/v1/keys/{walls['a']}:sig/sign", {"message": b64(b"x")},
                         token=walls["token"])
    assert r.status_code == 200, r.text


def test_list_never_reveals_namespace_b(live_server: ServerProcess,
                                        walls: dict[str, Any]) -> None:
    b_ids = {k["id"] for k in walls["keys"].values()}
    for query in ("", f"?namespace={walls['b']}", f"?namespace={walls['a']}", "?purpose=kem",
                  "?state=active&page_size=1000"):
        r = live_server.get("/v1/keys" + query, token=walls["token"])
        assert r.status_code == 200, r.text
        listed = {k["id"] for k in r.json()["keys"]}
        assert not listed & b_ids, query
        assert all(k["namespace"] == walls["a"] for k in r.json()["keys"]), query
    r = live_server.get(f"/v1/keys?namespace={walls['a']}", token=walls["token"])
    assert len(r.json()["keys"]) == len(B_KEYS)
