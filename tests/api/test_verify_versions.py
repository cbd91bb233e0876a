"""verify and verify-mac without ``key_version`` after a rotation, over REST on both
backends: a signature or tag carries no version, so when the primary says invalid the
older versions that may still process are tried (newest first); the answer names the
version that verified. A refused version (compromised without allow_compromised,
destroyed) is skipped."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.support.server import ServerProcess, b64


def _key(s: ServerProcess, purpose: str, algorithm: str) -> str:
    return str(s.create_key(f"vv-{secrets.token_hex(4)}", purpose=purpose,
                            algorithm=algorithm)["id"])


def _ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.parametrize("algorithm", ["ED25519", "ECDSA_P256_SHA256"])
def test_verify_finds_the_version_that_signed(live_server: ServerProcess,
                                              algorithm: str) -> None:
    s = live_server
    key = _key(s, "sign", algorithm)
    msg = b64(b"signed before the rotation")
    sig = _ok(s.post(f"/v1/keys/{key}/sign", {"message": msg}))["signature"]
    _ok(s.post(f"/v1/keys/{key}/rotate"))
    _ok(s.post(f"/v1/keys/{key}/rotate"))
    assert _ok(s.post(f"/v1/keys/{key}/verify", {"message": msg, "signature": sig})) == {
        "valid": True, "key_version": 1}
    # A version the caller names is the only one tried.
    assert _ok(s.post(f"/v1/keys/{key}/verify", {"message": msg, "signature": sig,
                                                 "key_version": 3})) == {
        "valid": False, "key_version": 3}
    # A wrong signature is invalid under every version: the primary's number answers.
    other = b64(b"another message")
    assert _ok(s.post(f"/v1/keys/{key}/verify", {"message": other, "signature": sig})) == {
        "valid": False, "key_version": 3}
    new = _ok(s.post(f"/v1/keys/{key}/sign", {"message": msg}))
    assert new["key_version"] == 3
    assert _ok(s.post(f"/v1/keys/{key}/verify", {"message": msg,
                                                 "signature": new["signature"]})) == {
        "valid": True, "key_version": 3}


def test_verify_skips_versions_that_may_not_process(live_server: ServerProcess) -> None:
    s = live_server
    key = _key(s, "sign", "ED25519")
    msg = b64(b"m")
    sig = _ok(s.post(f"/v1/keys/{key}/sign", {"message": msg}))["signature"]
    _ok(s.post(f"/v1/keys/{key}/rotate"))
    _ok(s.post(f"/v1/keys/{key}/versions/1/compromise", {"reason": "leaked"}))
    body = {"message": msg, "signature": sig}
    assert _ok(s.post(f"/v1/keys/{key}/verify", body)) == {"valid": False, "key_version": 2}
    assert _ok(s.post(f"/v1/keys/{key}/verify", {**body, "allow_compromised": True})) == {
        "valid": True, "key_version": 1}
    _ok(s.post(f"/v1/keys/{key}/versions/1/destroy"))
    assert _ok(s.post(f"/v1/keys/{key}/verify", {**body, "allow_compromised": True})) == {
        "valid": False, "key_version": 2}


def test_verify_mac_finds_the_version_that_made_the_tag(live_server: ServerProcess) -> None:
    s = live_server
    key = _key(s, "mac", "HMAC_SHA256")
    msg = b64(b"tagged before the rotation")
    tag = _ok(s.post(f"/v1/keys/{key}/mac", {"message": msg}))["mac"]
    _ok(s.post(f"/v1/keys/{key}/rotate"))
    assert _ok(s.post(f"/v1/keys/{key}/verify-mac", {"message": msg, "mac": tag})) == {
        "valid": True, "key_version": 1}
    assert _ok(s.post(f"/v1/keys/{key}/verify-mac", {"message": msg, "mac": tag,
                                                     "key_version": 2})) == {
        "valid": False, "key_version": 2}
    wrong = b64(b"\x00" * 32)
    assert _ok(s.post(f"/v1/keys/{key}/verify-mac", {"message": msg, "mac": wrong})) == {
        "valid": False, "key_version": 2}


def test_decapsulate_after_a_rotation_needs_the_version(live_server: ServerProcess) -> None:
    # ML-KEM answers a wrong secret (implicit rejection), not an error, for another
    # version's ciphertext: with several versions the caller must name the version.
    s = live_server
    name = _key(s, "kem", "ML_KEM_768")
    enc = _ok(s.post(f"/v1/keys/{name}/encapsulate", {}))
    assert _ok(s.post(f"/v1/keys/{name}/decapsulate",
                      {"ciphertext": enc["ciphertext"]}))["shared_secret"] == enc[
        "shared_secret"]
    _ok(s.post(f"/v1/keys/{name}/rotate", {}))
    r = s.post(f"/v1/keys/{name}/decapsulate", {"ciphertext": enc["ciphertext"]})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")
    assert "key_version" in r.json()["detail"]
    named = _ok(s.post(f"/v1/keys/{name}/decapsulate",
                       {"ciphertext": enc["ciphertext"], "key_version": 1}))
    assert named["shared_secret"] == enc["shared_secret"]
