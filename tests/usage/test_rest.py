"""allow_compromised over REST and the SDK on a live server (both backends): refused
without it, allowed and audited with it."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from keykeeper.client import Client
from keykeeper.errors import FailedPrecondition
from tests.support.server import ServerProcess, b64, unb64


def audit_lines(server: ServerProcess, key_id: str, operation: str,
                want: int) -> list[dict[str, Any]]:
    """Records of ``operation`` on ``key_id`` in the server's audit log (waits for the
    file sink to catch up, up to 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(x) for x in
                 (server.data_dir / "audit.log").read_bytes().splitlines()]
        found = [r for r in lines if r.get("key_id") == key_id
                 and r.get("operation") == operation]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_decrypt_rewrap_of_a_compromised_key_need_the_flag(live_server: ServerProcess) -> None:
    name = f"leak-{secrets.token_hex(3)}"
    key_id = live_server.create_key(name)["id"]
    ct = live_server.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"secret")}).json()[
        "ciphertext"]
    r = live_server.post(f"/v1/keys/{name}/compromise", {"reason": "key file leaked"})
    assert r.status_code == 200, r.text

    refused = live_server.post(f"/v1/keys/{name}/decrypt", {"ciphertext": ct})
    assert refused.status_code == 409 and refused.json()["code"] == "failed_precondition"
    assert "allow_compromised" in refused.json()["detail"]
    ok = live_server.post(f"/v1/keys/{name}/decrypt",
                          {"ciphertext": ct, "allow_compromised": True})
    assert ok.status_code == 200 and unb64(ok.json()["plaintext"]) == b"secret"

    batch = live_server.post(f"/v1/keys/{name}/decrypt", {"items": [
        {"ciphertext": ct}, {"ciphertext": ct, "allow_compromised": True}]}).json()["items"]
    assert batch[0]["error"]["code"] == "failed_precondition"
    assert unb64(batch[1]["plaintext"]) == b"secret"
    every = live_server.post(f"/v1/keys/{name}/decrypt", {
        "items": [{"ciphertext": ct}], "allow_compromised": True}).json()["items"]
    assert unb64(every[0]["plaintext"]) == b"secret"

    # A compromised key never protects, flag or not: rewrap's encrypt is refused.
    rewrap = live_server.post(f"/v1/keys/{name}/rewrap",
                              {"ciphertext": ct, "allow_compromised": True})
    assert rewrap.status_code == 409 and "compromised" in rewrap.json()["detail"]
    enc = live_server.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"x")})
    assert enc.status_code == 409

    records = audit_lines(live_server, key_id, "decrypt", 5)
    flagged = [r for r in records if r.get("allow_compromised")]
    refused_records = [r for r in records if r["outcome"] != "success"]
    assert len(flagged) == 3 and all(r["outcome"] == "success" for r in flagged)
    assert refused_records and all("allow_compromised" not in r for r in refused_records)


def test_verify_flags_over_rest_and_the_sdk(live_server: ServerProcess) -> None:
    sig_key = f"sig-{secrets.token_hex(3)}"
    mac_key = f"mac-{secrets.token_hex(3)}"
    kem_key = f"kem-{secrets.token_hex(3)}"
    live_server.create_key(sig_key, purpose="sign", algorithm="ED25519")
    live_server.create_key(mac_key, purpose="mac", algorithm="HMAC_SHA256")
    live_server.create_key(kem_key, purpose="kem", algorithm="ML_KEM_768")
    sig = live_server.post(f"/v1/keys/{sig_key}/sign", {"message": b64(b"m")}).json()[
        "signature"]
    tag = live_server.post(f"/v1/keys/{mac_key}/mac", {"message": b64(b"m")}).json()["mac"]
    enc = live_server.post(f"/v1/keys/{kem_key}/encapsulate", {}).json()
    for k in (sig_key, mac_key, kem_key):
        assert live_server.post(f"/v1/keys/{k}/compromise", {"reason": "r"}).status_code == 200

    v = live_server.post(f"/v1/keys/{sig_key}/verify", {"message": b64(b"m"), "signature": sig})
    assert v.status_code == 409
    v = live_server.post(f"/v1/keys/{sig_key}/verify", {"message": b64(b"m"), "signature": sig,
                                                        "allow_compromised": True})
    assert v.status_code == 200 and v.json()["valid"] is True

    with Client(live_server.addr, live_server.root_token) as kk:
        try:
            kk.verify_mac(mac_key, b"m", unb64(tag))
            raise AssertionError("verify-mac with a compromised key without the flag")
        except FailedPrecondition:
            pass
        assert kk.verify_mac(mac_key, b"m", unb64(tag), allow_compromised=True).valid
        secret = kk.decapsulate(kem_key, unb64(enc["ciphertext"]), allow_compromised=True)
        assert secret.shared_secret == unb64(enc["shared_secret"])
        assert kk.verify(sig_key, unb64(sig), b"m", allow_compromised=True).valid
