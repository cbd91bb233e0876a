"""What the audit trail records of uses of a compromised version, on a live server (both
backends): a refused call names the version it asked for, a rewrap names the version it
decrypted, ``allow_compromised: true`` is written whenever the flag was needed (decrypt,
batch decrypt, rewrap, verify, verify-mac, decapsulate; REST and the CLI), and the
compromise report of the version shows those uses after the compromise time -- and no
administrative calls."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
from typer.testing import CliRunner

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from tests.support.server import ServerProcess, b64


def _records(s: ServerProcess, key_id: str) -> list[dict[str, Any]]:
    """The response records naming ``key_id`` in the server's audit file (every record
    is in the file before its request is answered)."""
    out = []
    for line in (s.data_dir / "audit.log").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("key_id") == key_id and rec.get("phase") != "request":
            out.append(rec)
    return out


def _by_request(s: ServerProcess, r: httpx.Response) -> dict[str, Any]:
    rid = r.headers["x-request-id"]
    for line in (s.data_dir / "audit.log").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("request_id") == rid and rec.get("phase") != "request":
            return dict(rec)
    raise AssertionError(f"no audit record for request {rid}")


def _ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return dict(r.json())


def _compromised(s: ServerProcess, purpose: str = "encrypt",
                 algorithm: str | None = None) -> str:
    fields = {"purpose": purpose, **({"algorithm": algorithm} if algorithm else {})}
    return str(s.create_key(f"ac-{secrets.token_hex(4)}", **fields)["id"])


def test_report_shows_refused_and_rewrapped_uses_of_the_version(
        live_server: ServerProcess) -> None:
    s = live_server
    key = _compromised(s)
    ct = _ok(s.post(f"/v1/keys/{key}/encrypt", {"plaintext": b64(b"old"),
                                                "context": {"tenant": "acme"}}))["ciphertext"]
    _ok(s.post(f"/v1/keys/{key}/rotate"))
    _ok(s.post(f"/v1/keys/{key}/rotate"))
    _ok(s.post(f"/v1/keys/{key}/versions/1/compromise", {"reason": "tape lost"}))
    time.sleep(0.01)
    refused = s.post(f"/v1/keys/{key}/decrypt", {"ciphertext": ct,
                                                 "context": {"tenant": "acme"}})
    assert refused.status_code == 409, refused.text
    rec = _by_request(s, refused)
    assert (rec["outcome"], rec["error_code"], rec["key_version"]) == (
        "error", "failed_precondition", 1)
    rewrap = s.post(f"/v1/keys/{key}/rewrap", {"ciphertext": ct, "context": {"tenant": "acme"},
                                               "allow_compromised": True})
    assert _ok(rewrap)["key_version"] == 3                       # the new version answers
    rec = _by_request(s, rewrap)
    assert (rec["key_version"], rec["allow_compromised"]) == (1, True)  # the source

    deadline = time.monotonic() + 10     # the database audit sink writes in batches
    while True:
        report = _ok(s.get(f"/v1/keys/{key}/compromise-report?version=1"))
        if report["totals"]["by_operation"].get("rewrap") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert report["version"] == 1 and report["compromise_reason"] == "tape lost"
    # Uses only: the encrypt before, the refused decrypt and the rewrap after; not
    # key.create, key.rotate, key.compromise_version nor the report calls.
    assert report["totals"]["by_operation"] == {"encrypt": 1, "decrypt": 1, "rewrap": 1}
    flagged = [(u["operation"], u["outcome"], u["key_version"])
               for u in report["uses_after_compromise"]]
    assert flagged == [("decrypt", "failed_precondition", 1), ("rewrap", "success", 1)]
    assert report["totals"]["uses_after_compromise"] == 2
    whole = _ok(s.get(f"/v1/keys/{key}/compromise-report"))
    assert set(whole["totals"]["by_operation"]) <= {"encrypt", "decrypt", "rewrap"}


def test_allow_compromised_is_audited_on_every_processing_call(
        live_server: ServerProcess) -> None:
    s = live_server
    enc = _compromised(s)
    ct = _ok(s.post(f"/v1/keys/{enc}/encrypt", {"plaintext": b64(b"x"),
                                                "context": {"tenant": "acme"}}))["ciphertext"]
    sig_key = _compromised(s, "sign", "ED25519")
    msg = b64(b"m")
    sig = _ok(s.post(f"/v1/keys/{sig_key}/sign", {"message": msg}))["signature"]
    mac_key = _compromised(s, "mac", "HMAC_SHA256")
    tag = _ok(s.post(f"/v1/keys/{mac_key}/mac", {"message": msg}))["mac"]
    kem_key = _compromised(s, "kem", "ML_KEM_768")
    kem_ct = _ok(s.post(f"/v1/keys/{kem_key}/encapsulate"))["ciphertext"]
    for key in (enc, sig_key, mac_key, kem_key):
        _ok(s.post(f"/v1/keys/{key}/rotate"))
        _ok(s.post(f"/v1/keys/{key}/versions/1/compromise", {"reason": "leak"}))
    calls = {
        "decrypt": s.post(f"/v1/keys/{enc}/decrypt", {
            "ciphertext": ct, "context": {"tenant": "acme"}, "allow_compromised": True}),
        "decrypt batch": s.post(f"/v1/keys/{enc}/decrypt", {
            "items": [{"ciphertext": ct, "context": {"tenant": "acme"}}],
            "allow_compromised": True}),
        "decrypt batch item": s.post(f"/v1/keys/{enc}/decrypt", {
            "items": [{"ciphertext": ct, "context": {"tenant": "acme"},
                       "allow_compromised": True}]}),
        "rewrap": s.post(f"/v1/keys/{enc}/rewrap", {
            "ciphertext": ct, "context": {"tenant": "acme"}, "allow_compromised": True}),
        "verify": s.post(f"/v1/keys/{sig_key}/verify", {
            "message": msg, "signature": sig, "key_version": 1, "allow_compromised": True}),
        "verify-mac": s.post(f"/v1/keys/{mac_key}/verify-mac", {
            "message": msg, "mac": tag, "key_version": 1, "allow_compromised": True}),
        "decapsulate": s.post(f"/v1/keys/{kem_key}/decapsulate", {
            "ciphertext": kem_ct, "key_version": 1, "allow_compromised": True}),
    }
    for what, r in calls.items():
        body = _ok(r)
        assert "error" not in json.dumps(body), (what, body)
        rec = _by_request(s, r)
        assert rec["outcome"] == "success" and rec.get("allow_compromised") is True, (
            what, rec)
    # Not needed (the primary version processes): not recorded.
    fresh = _ok(s.post(f"/v1/keys/{enc}/encrypt", {"plaintext": b64(b"y")}))["ciphertext"]
    plain = s.post(f"/v1/keys/{enc}/decrypt", {"ciphertext": fresh, "allow_compromised": True})
    assert "allow_compromised" not in _by_request(s, _ok(plain) and plain)
    # GET /v1/audit (the database copy, written in batches) shows the field too.
    rid = calls["rewrap"].headers["x-request-id"]
    deadline = time.monotonic() + 10
    while True:
        found = [r for r in _ok(s.get(f"/v1/audit?request_id={rid}"))["records"]
                 if r.get("phase") != "request"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [r.get("allow_compromised") for r in found] == [True]


def test_cli_decrypt_with_allow_compromised_is_audited(live_server: ServerProcess) -> None:
    s = live_server
    key = _compromised(s)
    ct = _ok(s.post(f"/v1/keys/{key}/encrypt", {"plaintext": b64(b"secret"),
                                                "context": {"tenant": "acme"}}))["ciphertext"]
    _ok(s.post(f"/v1/keys/{key}/compromise", {"reason": "whole key leaked"}))
    env = {"KEYKEEPER_ADDR": s.addr, "KEYKEEPER_TOKEN": s.root_token}
    res = CliRunner().invoke(app, ["decrypt", key, ct, "--context", "tenant=acme",
                                   "--allow-compromised"], env=env, obj=State())
    assert res.exit_code == 0 and res.stdout == "secret", res.stderr
    (rec,) = [r for r in _records(s, key) if r["operation"] == "decrypt"]
    assert (rec["outcome"], rec["key_version"], rec["allow_compromised"]) == (
        "success", 1, True)
    assert rec["context"]["tenant"].startswith("hmac-sha256:")


def test_cli_audit_search_shows_allow_compromised(live_server: ServerProcess) -> None:
    s = live_server
    key = _compromised(s)
    ct = _ok(s.post(f"/v1/keys/{key}/encrypt", {"plaintext": b64(b"x")}))["ciphertext"]
    _ok(s.post(f"/v1/keys/{key}/compromise", {"reason": "leaked"}))
    _ok(s.post(f"/v1/keys/{key}/decrypt", {"ciphertext": ct, "allow_compromised": True}))
    env = {"KEYKEEPER_ADDR": s.addr, "KEYKEEPER_TOKEN": s.root_token}
    deadline = time.monotonic() + 10     # the database audit sink writes in batches
    while True:
        res = CliRunner().invoke(app, ["--format", "json", "audit", "search", "--key", key,
                                       "--operation", "decrypt"], env=env, obj=State())
        assert res.exit_code == 0, res.stderr
        found = json.loads(res.stdout)
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [r.get("allow_compromised") for r in found] == [True]
