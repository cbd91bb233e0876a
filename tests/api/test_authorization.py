"""Authorization over REST: deny by default, scoped grants, conditions on the encryption
context, 404 for keys outside the caller's scope, list filtering, rate limits."""

from __future__ import annotations

import secrets

from tests.support.principals import add_principal, add_role
from tests.support.server import ServerProcess, b64


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def test_application_needs_a_grant(live_server: ServerProcess) -> None:
    key = live_server.create_key(_name("az"), purpose="encrypt")
    token = add_principal(live_server.database_url, _name("app"), ("application",))
    r = live_server.post(f"/v1/keys/{key['id']}/encrypt", {"plaintext": b64(b"x")}, token=token)
    assert (r.status_code, r.json()["code"]) == (404, "not_found"), r.text
    # The answer is the one a missing key gets: nothing tells the key exists.
    missing = live_server.post("/v1/keys/k-" + "0" * 32 + "/encrypt", {"plaintext": b64(b"x")},
                               token=token)
    assert missing.status_code == 404
    assert r.json()["detail"].replace(key["id"], "X") == \
        missing.json()["detail"].replace("k-" + "0" * 32, "X")


def test_grant_scope_and_missing_permission(live_server: ServerProcess) -> None:
    tag = secrets.token_hex(4)
    mine = live_server.create_key(f"card-{tag}", purpose="encrypt", labels={"team": tag})
    other = live_server.create_key(f"other-{tag}", purpose="encrypt")
    app = _name("app")
    token = add_principal(live_server.database_url, app, ("application",), grants=(
        {"operations": ["encrypt", "key.get"], "namespace": "default",
         "key_pattern": "card-*", "labels": {"team": tag}},))
    r = live_server.post(f"/v1/keys/card-{tag}/encrypt", {"plaintext": b64(b"hi")}, token=token)
    assert r.status_code == 200, r.text
    ct = r.json()["ciphertext"]
    # Visible key, operation not granted: 403 naming the missing permission.
    r = live_server.post(f"/v1/keys/{mine['id']}/decrypt", {"ciphertext": ct}, token=token)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    assert "'decrypt'" in r.json()["detail"] and app in r.json()["detail"]
    # Outside the key-name pattern: not found, by id and by name.
    for ref in (other["id"], f"other-{tag}", f"default:other-{tag}"):
        r = live_server.post(f"/v1/keys/{ref}/encrypt", {"plaintext": b64(b"x")}, token=token)
        assert r.status_code == 404, (ref, r.text)
    # A role ceiling: application may not rotate even with a grant naming it.
    r = live_server.post(f"/v1/keys/card-{tag}/rotate", {}, token=token)
    assert r.status_code == 403 and "key.rotate" in r.json()["detail"]


def test_condition_on_encryption_context(live_server: ServerProcess) -> None:
    name = _name("tenant")
    live_server.create_key(name, purpose="encrypt")
    token = add_principal(
        live_server.database_url, _name("app"), ("application",), metadata={"tenant": "t1"},
        grants=({"operations": ["encrypt", "decrypt"], "namespace": "default",
                 "key_pattern": name,
                 "condition": "context.tenant == principal.metadata.tenant"},))
    ok = live_server.post(f"/v1/keys/{name}/encrypt",
                          {"plaintext": b64(b"a"), "context": {"tenant": "t1"}}, token=token)
    assert ok.status_code == 200, ok.text
    for context in ({"tenant": "t2"}, {}, None):
        body = {"plaintext": b64(b"a")} | ({"context": context} if context is not None else {})
        r = live_server.post(f"/v1/keys/{name}/encrypt", body, token=token)
        assert (r.status_code, r.json()["code"]) == (403, "permission_denied"), context
        assert "condition" in r.json()["detail"]
    # In a batch, each item is judged on its own context.
    r = live_server.post(f"/v1/keys/{name}/encrypt", {"items": [
        {"plaintext": b64(b"a"), "context": {"tenant": "t1"}},
        {"plaintext": b64(b"b"), "context": {"tenant": "t9"}}]}, token=token)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert "ciphertext" in items[0] and items[1]["error"]["code"] == "permission_denied"
    r = live_server.post(f"/v1/keys/{name}/decrypt", {"items": [
        {"ciphertext": items[0]["ciphertext"], "context": {"tenant": "t1"}},
        {"ciphertext": items[0]["ciphertext"], "context": {"tenant": "t2"}}]}, token=token)
    got = r.json()["items"]
    assert "plaintext" in got[0] and got[1]["error"]["code"] == "permission_denied"


def test_list_shows_only_keys_in_scope(live_server: ServerProcess) -> None:
    tag = secrets.token_hex(4)
    for i in range(3):
        live_server.create_key(f"vis-{tag}-{i}", purpose="encrypt")
        live_server.create_key(f"hid-{tag}-{i}", purpose="encrypt")
    role = _name("lister")
    add_role(live_server.database_url, role, ("key.get", "key.list"))
    token = add_principal(live_server.database_url, _name("ls"), (role,), grants=(
        {"operations": ["key.get"], "namespace": "default", "key_pattern": f"vis-{tag}-*"},))
    seen: list[str] = []
    page_token = None
    while True:
        q = "?page_size=2" + (f"&page_token={page_token}" if page_token else "")
        r = live_server.get("/v1/keys" + q, token=token)
        assert r.status_code == 200, r.text
        seen += [k["name"] for k in r.json()["keys"]]
        page_token = r.json().get("next_page_token")
        if not page_token:
            break
    assert sorted(seen) == [f"vis-{tag}-{i}" for i in range(3)]


def test_application_cannot_list_and_random_needs_role(live_server: ServerProcess) -> None:
    token = add_principal(live_server.database_url, _name("co"), ("crypto-officer",))
    r = live_server.get("/v1/keys", token=token)
    assert r.status_code == 200
    r = live_server.post("/v1/random", {"length": 8}, token=token)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    assert "'random'" in r.json()["detail"]
    r = live_server.post("/v1/keys", {"name": _name("x"), "purpose": "encrypt"}, token=token)
    assert r.status_code == 201, r.text
    k = r.json()["name"]
    r = live_server.post(f"/v1/keys/{k}/encrypt", {"plaintext": b64(b"x")}, token=token)
    assert r.status_code == 403  # crypto officers manage keys, never use them


def test_principal_rate_limit(live_server: ServerProcess) -> None:
    token = add_principal(live_server.database_url, _name("slow"), ("application",),
                          rate_limit=1.0, grants=({"operations": ["random"]},))
    codes = [live_server.post("/v1/random", {"length": 8}, token=token) for _ in range(5)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited, [r.status_code for r in codes]
    assert limited[0].json()["code"] == "resource_exhausted"
    assert int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["retry_after"] >= 1


def test_page_tokens_are_opaque_and_bound_to_the_caller(live_server: ServerProcess) -> None:
    import base64
    import json
    tag = secrets.token_hex(4)
    live_server.create_key(f"seen-{tag}", purpose="encrypt")
    for i in range(25):  # more hidden rows than one page's bounded reads
        live_server.create_key(f"zz-hidden-{tag}-{i:02d}", purpose="encrypt")
    role = _name("lister")
    add_role(live_server.database_url, role, ("key.get", "key.list"))
    grants = ({"operations": ["key.get"], "namespace": "default", "key_pattern": f"seen-{tag}"},)
    token = add_principal(live_server.database_url, _name("ls"), (role,), grants=grants)
    other = add_principal(live_server.database_url, _name("ls"), (role,), grants=grants)
    page_token, names = None, []
    for _ in range(100):
        q = "?page_size=1" + (f"&page_token={page_token}" if page_token else "")
        r = live_server.get("/v1/keys" + q, token=token)
        assert r.status_code == 200, r.text
        names += [k["name"] for k in r.json()["keys"]]
        page_token = r.json().get("next_page_token")
        if not page_token:
            break
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4))
        assert b"hidden" not in raw and tag.encode() not in raw
        # Another principal cannot use it; a forged store token is refused.
        r = live_server.get(f"/v1/keys?page_token={page_token}", token=other)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    assert f"seen-{tag}" in names and not [n for n in names if "hidden" in n]
    forged = base64.urlsafe_b64encode(json.dumps(["default", f"zz-hidden-{tag}-00"])
                                      .encode()).decode()
    r = live_server.get(f"/v1/keys?page_token={forged}", token=token)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")


def test_relabel_cannot_leave_or_enter_a_scope(live_server: ServerProcess) -> None:
    tag = secrets.token_hex(4)
    name = f"lbl-{tag}"
    live_server.create_key(name, purpose="encrypt", labels={"team": f"a{tag}"})
    role = _name("keyadmin")
    add_role(live_server.database_url, role, ("key.get", "key.update"))
    token = add_principal(live_server.database_url, _name("ka"), (role,), grants=(
        {"operations": ["key.get", "key.update"], "labels": {"team": f"a{tag}"}},))
    r = live_server.request("PATCH", f"/v1/keys/{name}", {"labels": {"team": f"b{tag}"}},
                            token=token)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied"), r.text
    r = live_server.request("PATCH", f"/v1/keys/{name}",
                            {"labels": {"team": f"a{tag}", "x": "y"}}, token=token)
    assert r.status_code == 200, r.text
    assert live_server.get(f"/v1/keys/{name}").json()["labels"]["team"] == f"a{tag}"


def test_refused_callers_do_not_drain_a_namespace_limit(live_server: ServerProcess) -> None:
    ns = _name("rl")
    assert live_server.post("/v1/namespaces", {"name": ns, "rate_limit": 1}).status_code == 201
    live_server.create_key("k", namespace=ns, purpose="encrypt")
    grant = {"operations": ["encrypt"], "namespace": ns,
             "condition": "context.tenant == principal.metadata.tenant"}
    good = add_principal(live_server.database_url, _name("ok"), ("application",),
                         metadata={"tenant": "acme"}, grants=(grant,), wait=False)
    bad = add_principal(live_server.database_url, _name("evil"), ("application",),
                        metadata={"tenant": "evil"}, grants=(grant,))
    body = {"plaintext": b64(b"x"), "context": {"tenant": "acme"}}
    for _ in range(5):
        r = live_server.post(f"/v1/keys/{ns}:k/encrypt", body, token=bad)
        assert r.status_code == 403, r.text
    r = live_server.post(f"/v1/keys/{ns}:k/encrypt", body, token=good)
    assert r.status_code == 200, r.text
    codes = [live_server.post(f"/v1/keys/{ns}:k/encrypt", body, token=good).status_code
             for _ in range(4)]
    assert 429 in codes


def test_conditional_grant_does_not_allow_create_when_its_condition_fails(
        live_server: ServerProcess) -> None:
    role = _name("maker")
    add_role(live_server.database_url, role, ("key.create", "key.get"))
    grant = {"operations": ["key.create", "key.get"], "namespace": "default",
             "condition": 'principal.metadata.team == "pay"'}
    other = add_principal(live_server.database_url, _name("mk"), (role,),
                          metadata={"team": "other"}, grants=(grant,), wait=False)
    pay = add_principal(live_server.database_url, _name("mk"), (role,),
                        metadata={"team": "pay"}, grants=(grant,))
    r = live_server.post("/v1/keys", {"name": _name("c"), "purpose": "encrypt"}, token=other)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied"), r.text
    r = live_server.post("/v1/keys", {"name": _name("c"), "purpose": "encrypt"}, token=pay)
    assert r.status_code == 201, r.text
