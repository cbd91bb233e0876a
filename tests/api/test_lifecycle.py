"""Key lifecycle over REST on both backends."""

from __future__ import annotations

import secrets

from tests.support.server import ServerProcess, b64


def name() -> str:
    return "k-" + secrets.token_hex(4)


def test_create_get_by_id_name_and_namespace(live_server: ServerProcess) -> None:
    n = name()
    key = live_server.create_key(n, description="orders", labels={"team": "pay"})
    assert key["state"] == "active" and key["algorithm"] == "AES_256_GCM"
    assert key["purpose"] == "encrypt" and key["primary_version"] == 1
    for ref in (n, f"default:{n}", key["id"]):
        got = live_server.get(f"/v1/keys/{ref}").json()
        assert got["id"] == key["id"] and got["labels"] == {"team": "pay"}
    dup = live_server.post("/v1/keys", {"name": n})
    assert (dup.status_code, dup.json()["code"]) == (409, "already_exists")


def test_unknown_namespace_is_not_found(live_server: ServerProcess) -> None:
    r = live_server.post("/v1/keys", {"name": name(), "namespace": "nowhere"})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


def test_list_filters_and_pagination(live_server: ServerProcess) -> None:
    tag = secrets.token_hex(4)
    made = sorted(name() for _ in range(5))
    for n in made:
        live_server.create_key(n, labels={"batch": tag})
    live_server.create_key(name(), purpose="mac", labels={"batch": tag})
    seen: list[str] = []
    token = None
    while True:
        q = f"/v1/keys?label=batch={tag}&purpose=encrypt&page_size=2"
        r = live_server.get(q + (f"&page_token={token}" if token else "")).json()
        assert len(r["keys"]) <= 2
        seen += [k["name"] for k in r["keys"]]
        token = r.get("next_page_token")
        if not token:
            break
    assert seen == made
    suspended = live_server.get(f"/v1/keys?label=batch={tag}&state=suspended").json()
    assert suspended["keys"] == [] and "next_page_token" not in suspended


def test_update_description_and_labels(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n, labels={"a": "1"})
    r = live_server.request("PATCH", f"/v1/keys/{n}", {"description": "new", "labels": {"b": "2"}})
    assert r.status_code == 200
    assert r.json()["description"] == "new" and r.json()["labels"] == {"b": "2"}


def test_rotate_versions_and_old_ciphertext(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n)
    old = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}).json()
    assert live_server.post(f"/v1/keys/{n}/rotate").json()["primary_version"] == 2
    new = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"y")}).json()
    assert (old["key_version"], new["key_version"]) == (1, 2)
    versions = live_server.get(f"/v1/keys/{n}/versions").json()["versions"]
    assert [(v["version"], v["state"]) for v in versions] == [(1, "active"), (2, "active")]
    # Encrypt under an explicit older version is honoured, never ignored: refused while
    # min_encryption_version is 0 (only the primary version protects), done once it allows.
    pinned = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"z"), "key_version": 1})
    assert (pinned.status_code, pinned.json()["code"]) == (409, "failed_precondition")
    assert "only the primary version" in pinned.json()["detail"]
    r = live_server.request("PATCH", f"/v1/keys/{n}", {"min_encryption_version": 1})
    assert r.status_code == 200, r.text
    pinned = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"z"), "key_version": 1})
    assert pinned.json()["key_version"] == 1
    missing = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"z"), "key_version": 7})
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    # Rewrap moves old data to the primary version.
    rw = live_server.post(f"/v1/keys/{n}/rewrap", {"ciphertext": old["ciphertext"]}).json()
    assert rw["key_version"] == 2
    back = live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": rw["ciphertext"]}).json()
    assert back["plaintext"] == b64(b"x")


def test_disable_enable(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n)
    ct = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}).json()["ciphertext"]
    assert live_server.post(f"/v1/keys/{n}/disable").json()["state"] == "suspended"
    for path, body in ((f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}),
                       (f"/v1/keys/{n}/decrypt", {"ciphertext": ct})):
        r = live_server.post(path, body)
        assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")
    again = live_server.post(f"/v1/keys/{n}/disable")
    assert again.json()["code"] == "failed_precondition"
    assert live_server.post(f"/v1/keys/{n}/enable").json()["state"] == "active"
    assert live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": ct}).status_code == 200


def test_schedule_and_cancel_destruction(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n)
    for bad in (6, 31, -1):
        r = live_server.post(f"/v1/keys/{n}/schedule-destruction", {"pending_days": bad})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    k = live_server.post(f"/v1/keys/{n}/schedule-destruction", {"pending_days": 7}).json()
    assert k["state"] == "pending-destruction" and k["destruction_time"]
    r = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")})
    assert r.json()["code"] == "failed_precondition"
    k = live_server.post(f"/v1/keys/{n}/cancel-destruction").json()
    assert k["state"] == "suspended" and k["destruction_time"] is None
    default = live_server.post(f"/v1/keys/{n}/schedule-destruction").json()
    assert default["state"] == "pending-destruction"


def test_compromise_allows_only_processing(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n)
    ct = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}).json()["ciphertext"]
    empty = live_server.post(f"/v1/keys/{n}/compromise", {"reason": "  "})
    assert empty.json()["code"] == "invalid_argument"
    k = live_server.post(f"/v1/keys/{n}/compromise", {"reason": "laptop stolen"}).json()
    assert k["state"] == "compromised" and k["compromise_reason"] == "laptop stolen"
    assert k["compromised_at"]
    r = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")})
    assert r.json()["code"] == "failed_precondition"
    # Processing with a compromised key needs the audited recovery flag (issue 4).
    assert live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": ct}).status_code == 409
    assert live_server.post(f"/v1/keys/{n}/decrypt",
                            {"ciphertext": ct, "allow_compromised": True}).status_code == 200
    versions = live_server.get(f"/v1/keys/{n}/versions").json()["versions"]
    assert {v["state"] for v in versions} == {"compromised"}


def test_destroy_version_is_crypto_erasure(live_server: ServerProcess) -> None:
    n = name()
    live_server.create_key(n)
    ct = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(b"x")}).json()["ciphertext"]
    primary = live_server.post(f"/v1/keys/{n}/versions/1/destroy")
    assert (primary.status_code, primary.json()["code"]) == (409, "failed_precondition")
    live_server.post(f"/v1/keys/{n}/rotate")
    v = live_server.post(f"/v1/keys/{n}/versions/1/destroy").json()
    assert v["state"] == "destroyed" and v["destroyed_at"]
    r = live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": ct})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")
    twice = live_server.post(f"/v1/keys/{n}/versions/1/destroy")
    assert twice.json()["code"] == "failed_precondition"
    nope = live_server.post(f"/v1/keys/{n}/versions/9/destroy")
    assert nope.json()["code"] == "not_found"
