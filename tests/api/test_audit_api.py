"""The audit API on a live server: records per request (two for a mutating one), search,
chain heads, the checkpoint key, value hashing, server-side verification -- and no secret
in any record."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from keykeeper.audit.verify import line_hash, load_public_key
from tests.support.principals import add_principal
from tests.support.server import ServerProcess, b64


def _search(server: ServerProcess, query: str, wanted: int = 1,
            timeout: float = 5.0) -> list[dict[str, Any]]:
    """Records from GET /v1/audit (the database sink lags by up to a batch)."""
    deadline = time.monotonic() + timeout
    while True:
        r = server.get(f"/v1/audit?{query}")
        assert r.status_code == 200, r.text
        records: list[dict[str, Any]] = r.json()["records"]
        if len(records) >= wanted or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def _file_records(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (server.data_dir / "audit.log").read_bytes().splitlines()]


def test_mutating_routes_write_a_request_record_first(live_server: ServerProcess) -> None:
    name = "aud-" + secrets.token_hex(4)
    r = live_server.post("/v1/keys", {"name": name})
    assert r.status_code == 201
    rid = r.headers["x-request-id"]
    e = live_server.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"x")})
    mine = [x for x in _file_records(live_server) if x.get("request_id") == rid]
    assert [(x["phase"], x["outcome"]) for x in mine] == [("request", "requested"),
                                                         ("response", "success")]
    assert mine[1]["key_id"] == r.json()["id"] and mine[0]["seq"] < mine[1]["seq"]
    enc = [x for x in _file_records(live_server)
           if x.get("request_id") == e.headers["x-request-id"]]
    assert len(enc) == 1 and "phase" not in enc[0] and enc[0]["key_version"] == 1


def test_search_filters_and_hash(live_server: ServerProcess) -> None:
    name = "aud-" + secrets.token_hex(4)
    key = live_server.create_key(name)
    for i in range(3):
        live_server.post(f"/v1/keys/{name}/encrypt",
                         {"plaintext": b64(b"x"), "context": {"tenant": f"t-{i}"}})
    bad = live_server.post(f"/v1/keys/{name}/decrypt", {"ciphertext": "keykeeper:v1:x"})
    assert bad.status_code == 400
    by_key = _search(live_server, f"key={name}&operation=encrypt", wanted=3)
    assert len(by_key) == 3 and {x["key_id"] for x in by_key} == {key["id"]}
    assert [x["seq"] for x in by_key] == sorted((x["seq"] for x in by_key), reverse=True)
    tenant = live_server.post("/v1/audit/hash", {"value": "t-1"}).json()["hmac"]
    assert sum(x["context"] == {"tenant": tenant} for x in by_key) == 1
    token = live_server.post("/v1/audit/hash", {"value": live_server.root_token}).json()
    assert {x["token_hmac"] for x in by_key} == {token["hmac"]}
    errors = _search(live_server, f"key={key['id']}&outcome=decryption_failed")
    assert len(errors) == 1 and errors[0]["request_id"] == bad.headers["x-request-id"]
    assert _search(live_server, f"request_id={bad.headers['x-request-id']}")[0]["seq"] == \
        errors[0]["seq"]
    page = live_server.get(f"/v1/audit?key={name}&page_size=2").json()
    assert len(page["records"]) == 2 and page["next_page_token"]
    rest = live_server.get(f"/v1/audit?key={name}&page_size=2&page_token="
                           f"{page['next_page_token']}").json()["records"]
    assert {x["seq"] for x in rest}.isdisjoint({x["seq"] for x in page["records"]})
    assert _search(live_server, "since=1h&operation=key.*&principal=root")
    assert live_server.get("/v1/audit?since=2999-01-01T00:00:00Z").json()["records"] == []
    for q in ("since=yesterday", "until=2026-01-01T00:00:00", "page_size=0",
              "page_size=1001", "order=up", "operation=DROP%20TABLE", "page_token=%%%",
              "outcome=a%20b", "chain=a%20b", "request_id=xyz"):
        r = live_server.get(f"/v1/audit?{q}")
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), q
    r = live_server.get("/v1/audit?key=no-such-key")
    assert r.json()["code"] == "not_found"


def test_heads_public_key_and_server_verify(live_server: ServerProcess) -> None:
    head = live_server.get("/v1/audit/head").json()
    assert head["seq"] > 0 and len(head["hash"]) == 64
    lines = (live_server.data_dir / "audit.log").read_bytes().splitlines()
    mine = [x for x in lines if json.loads(x)["seq"] == head["seq"]]
    assert line_hash(mine[-1]) == head["hash"]
    again = live_server.get(f"/v1/audit/head?seq={head['seq']}").json()
    assert again["hash"] == head["hash"]
    assert live_server.get("/v1/audit/head?seq=999999999").json()["code"] == "not_found"
    assert live_server.get("/v1/audit/head?chain=nowhere").json()["code"] == "not_found"
    assert live_server.get("/v1/audit/head?seq=0").json()["code"] == "invalid_argument"
    pem = live_server.get("/v1/audit/public-key").json()["public_key"]
    assert len(load_public_key(pem)) == 32
    report = live_server.post("/v1/audit/verify", {}).json()
    assert report["ok"], report["problems"]
    assert report["records"] >= head["seq"] and report["chains"][0]["head_confirmed"]


def test_no_secret_in_any_record(live_server: ServerProcess) -> None:
    name = "aud-" + secrets.token_hex(4)
    live_server.create_key(name)
    plaintext = b"PLAINTEXT-" + secrets.token_hex(8).encode()
    context = "CONTEXT-" + secrets.token_hex(8)
    enc = live_server.post(f"/v1/keys/{name}/encrypt",
                           {"plaintext": b64(plaintext), "context": {"tenant": context}})
    live_server.post(f"/v1/keys/{name}/decrypt",
                     {"ciphertext": enc.json()["ciphertext"], "context": {"tenant": context}})
    live_server.post("/v1/audit/hash", {"value": "VALUE-HASHED-" + context})
    wrong = "kk.WRONG-" + secrets.token_hex(8)
    assert live_server.get("/v1/keys", token=wrong).status_code == 401
    dk = live_server.post(f"/v1/keys/{name}/data-key", {"context": {"tenant": context}})
    searched = json.dumps(_search(live_server, f"key={name}", wanted=4)).encode()
    text = (live_server.data_dir / "audit.log").read_bytes()
    for blob in (text, searched):
        for secret in (plaintext, b64(plaintext).encode(), context.encode(),
                       live_server.root_token.encode(), live_server.passphrase.encode(),
                       wrong.encode(), enc.json()["ciphertext"].encode(),
                       dk.json()["plaintext"].encode(), dk.json()["ciphertext"].encode()):
            assert secret not in blob
    rejected = [x for x in _file_records(live_server) if x.get("error_code") ==
                "unauthenticated" and x.get("token_hmac")]
    assert rejected  # a rejected token is recorded by its HMAC, for forensics


def test_a_checkpoint_on_request(live_server: ServerProcess) -> None:
    r = live_server.post("/v1/audit/checkpoint")
    assert r.status_code == 200, r.text
    cp = r.json()
    assert cp["seq"] == cp["checkpoint"] and cp["chain"] == live_server.get(
        "/v1/audit/head").json()["chain"]
    line = next(x for x in (live_server.data_dir / "audit.log").read_bytes().splitlines()
                if json.loads(x)["seq"] == cp["seq"])   # written when it answers
    assert line_hash(line) == cp["hash"]
    doc = json.loads(line)
    assert (doc["operation"], doc["reason"], doc["principal"], doc["request_id"]) == (
        "audit.checkpoint", "requested", "root", r.headers["x-request-id"])
    assert "signature" in doc
    mine = [x for x in _file_records(live_server)
            if x.get("request_id") == r.headers["x-request-id"]]
    assert [x["operation"] for x in mine] == ["audit.checkpoint", "audit.checkpoint_now"]
    app = add_principal(live_server.database_url, "app-" + secrets.token_hex(3),
                        ("application",))
    denied = live_server.post("/v1/audit/checkpoint", token=app)
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
    auditor = add_principal(live_server.database_url, "aud-" + secrets.token_hex(3),
                            ("auditor",))
    assert live_server.post("/v1/audit/checkpoint", token=auditor).status_code == 200


def _approval(server: ServerProcess, requester: str, ns: str) -> str:
    r = server.request("DELETE", f"/v1/namespaces/{ns}", token=requester)
    assert (r.status_code, r.json()["code"]) == (202, "approval_required"), r.text
    return str(r.json()["approval_id"])


def test_an_approval_whose_execution_fails_is_audited_and_found_as_an_error(
        live_server: ServerProcess) -> None:
    """The M-th approval runs the request; when the operation fails, the approving call's
    record says so (its own outcome stays success: the vote counted) and the search finds
    it among the errors."""
    tag = secrets.token_hex(3)
    so_name = f"so-{tag}"
    so = add_principal(live_server.database_url, so_name, ("security-officer",))
    c1, c2 = (add_principal(live_server.database_url, f"c{n}-{tag}", ("key-custodian",))
              for n in (1, 2))
    gone, kept = f"gone-{tag}", f"kept-{tag}"
    for ns in (gone, kept):
        assert live_server.post("/v1/namespaces", {"name": ns}).status_code == 201
    failing, working = _approval(live_server, so, gone), _approval(live_server, so, kept)
    assert live_server.request("DELETE", f"/v1/namespaces/{gone}").status_code == 200  # root
    for approval_id in (failing, working):
        assert live_server.post(f"/v1/approvals/{approval_id}/approve",
                                token=c1).status_code == 200
    last = live_server.post(f"/v1/approvals/{failing}/approve", token=c2)
    assert last.status_code == 200 and last.json()["state"] == "failed"
    assert last.json()["error"]["code"] == "not_found"
    ran = live_server.post(f"/v1/approvals/{working}/approve", token=c2)
    assert ran.json()["state"] == "executed"

    def response(rid: str) -> dict[str, Any]:
        (doc,) = [x for x in _file_records(live_server)
                  if x.get("request_id") == rid and x.get("phase") == "response"]
        return doc

    doc = response(last.headers["x-request-id"])
    assert (doc["operation"], doc["outcome"], doc["principal"]) == (
        "approval.approve", "success", f"c2-{tag}")
    assert (doc["approval_id"], doc["execution"], doc["on_behalf_of"]) == (
        failing, "failed:not_found", so_name)
    ok = response(ran.headers["x-request-id"])
    assert (ok["execution"], ok["on_behalf_of"]) == ("executed", so_name)
    first_vote = [x for x in _file_records(live_server) if x.get("approval_id") == failing
                  and x.get("principal") == f"c1-{tag}"]
    assert first_vote and all("execution" not in x for x in first_vote)
    q = "operation=approval.approve&since=1h"
    errors = _search(live_server, f"{q}&outcome=error&principal=c2-{tag}")
    assert [x["approval_id"] for x in errors] == [failing]
    assert [x["request_id"] for x in _search(live_server, f"{q}&outcome=not_found&"
                                             f"approval_id={failing}")] == [
        last.headers["x-request-id"]]
    assert [x["approval_id"] for x in _search(
        live_server, f"{q}&execution=failed&principal=c2-{tag}")] == [failing]
    assert [x["approval_id"] for x in _search(
        live_server, f"{q}&execution=executed&principal=c2-{tag}")] == [working]
    story = _search(live_server, f"approval_id={failing}&order=asc", wanted=5)
    assert [(x["operation"], x["principal"], x["outcome"], x.get("execution"))
            for x in story if x.get("phase") != "request"] == [
        ("namespace.delete", so_name, "pending", None),
        ("approval.approve", f"c1-{tag}", "success", None),
        ("approval.approve", f"c2-{tag}", "success", "failed:not_found")]
    for bad in ("execution=ok", "execution=failed:", "approval_id=a%20b"):
        r = live_server.get(f"/v1/audit?{bad}")
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), bad


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_search_refuses_values_out_of_range_or_with_nul(live_server: ServerProcess) -> None:
    """Breaker: times that overflow in UTC answered 500 (OverflowError), a page token with
    a huge seq 500 on SQLite and 503 on PostgreSQL, NUL characters 503 on PostgreSQL."""
    when = "2026-01-01T00:00:00+00:00"
    for q in ("since=0001-01-01T00:00:00%2B05:00", "until=9999-12-31T23:59:59-05:00",
              "principal=a%00b", "page_token=" + _token([when, "x", 10**30]),
              "page_token=" + _token([when, "x", 2**63]),
              "page_token=" + _token([when, "x", -(2**63) - 1]),
              "page_token=" + _token([when, "a\u0000b", 1]),
              "page_token=" + _token(["0001-01-01T00:00:00+05:00", "x", 1]),
              "page_token=" + _token(["9999-12-31T23:59:59-05:00", "x", 1])):
        r = live_server.get(f"/v1/audit?{q}")
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), (q, r.text)
    r = live_server.get("/v1/audit?since=0001-01-01T00:00:00%2B05:00")
    assert "years 1 and 9999" in r.json()["detail"]
    assert "NUL" in live_server.get("/v1/audit?principal=a%00b").json()["detail"]
    for q in ("since=0001-01-01T00:00:00Z", "until=9999-12-31T23:59:59Z",
              "since=0001-01-01T05:00:00%2B05:00",
              "page_token=" + _token([when, "x", 2**63 - 1])):
        assert live_server.get(f"/v1/audit?{q}").status_code == 200, q
