"""HSM-protected keys through a real server (a subprocess with the token's settings) on
SQLite and PostgreSQL: the same REST API and formats as software keys; signatures
verify with pyca/cryptography; a server with a wrong PIN answers 503 ``unavailable``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from tests.conftest import PgSchema, pg_available
from tests.hsm.conftest import hsm_token
from tests.hsm.probe import objects
from tests.support.server import ServerProcess, b64, unb64
from tests.support.softhsm import SoftToken


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hsm_server(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess,
                                                                            SoftToken]]:
    if request.param == "postgresql" and (reason := pg_available()):
        pytest.skip(reason)
    soft = hsm_token()
    data_dir = tmp_path_factory.mktemp(f"hsm-server-{request.param}")
    schema = PgSchema() if request.param == "postgresql" else None
    url = schema.url if schema else f"sqlite:///{data_dir / 'keykeeper.db'}"
    server = ServerProcess(data_dir=data_dir, database_url=url, backend=str(request.param),
                           env=soft.env)
    try:
        server.start()
        server.init_and_unseal()
        yield server, soft
    finally:
        server.stop()
        if schema:
            schema.drop()


def _ok(r: object) -> dict[str, object]:
    import httpx

    assert isinstance(r, httpx.Response)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def test_encrypt_decrypt_rotate_and_destroy(hsm_server: tuple[ServerProcess, SoftToken]) -> None:
    server, soft = hsm_server
    key = server.create_key("aes", algorithm="AES_256_GCM", protection="hsm")
    assert key["protection"] == "hsm"
    ct = _ok(server.post("/v1/keys/aes/encrypt", {"plaintext": b64(b"over http"),
                                                  "context": {"app": "x"}}))
    assert str(ct["ciphertext"]).startswith(f"keykeeper:v1:{key['id']}:1:")
    out = _ok(server.post("/v1/keys/aes/decrypt", {"ciphertext": ct["ciphertext"],
                                                   "context": {"app": "x"}}))
    assert unb64(str(out["plaintext"])) == b"over http"
    bad = server.post("/v1/keys/aes/decrypt", {"ciphertext": ct["ciphertext"],
                                               "context": {"app": "y"}})
    assert bad.status_code == 400 and bad.json()["code"] == "decryption_failed"
    ids_before = {o["id"] for o in objects(soft)}
    _ok(server.post("/v1/keys/aes/rotate"))
    assert len({o["id"] for o in objects(soft)} - ids_before) == 1    # a new HSM key
    _ok(server.post("/v1/keys/aes/versions/1/destroy"))
    assert len({o["id"] for o in objects(soft)} & ids_before) == len(ids_before) - 1
    gone = server.post("/v1/keys/aes/decrypt", {"ciphertext": ct["ciphertext"],
                                                "context": {"app": "x"}})
    assert gone.status_code in (400, 409) and gone.json()["code"] in (
        "failed_precondition", "decryption_failed")


@pytest.mark.parametrize(("algorithm", "fmt"), [("ECDSA_P256_SHA256", "der"),
                                                ("ECDSA_P256_SHA256", "p1363"),
                                                ("ECDSA_P384_SHA384", "der"),
                                                ("RSA_PSS_3072_SHA256", "der")])
def test_signatures_verify_with_the_public_key(hsm_server: tuple[ServerProcess, SoftToken],
                                               algorithm: str, fmt: str) -> None:
    server, _ = hsm_server
    name = f"{algorithm.lower()}-{fmt}".replace("_", "-")
    server.create_key(name, algorithm=algorithm, protection="hsm")
    pem = _ok(server.get(f"/v1/keys/{name}/public-key"))["public_key"]
    public = serialization.load_pem_public_key(str(pem).encode())
    body = {"message": b64(b"signed in the token")}
    if fmt == "p1363":
        body["signature_format"] = "p1363"
    sig = unb64(str(_ok(server.post(f"/v1/keys/{name}/sign", body))["signature"]))
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(sig, b"signed in the token",
                      padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                      hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        h: hashes.HashAlgorithm = hashes.SHA256() if public.key_size == 256 else hashes.SHA384()
        if fmt == "p1363":
            n = len(sig) // 2
            assert n == public.key_size // 8
            sig = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"),
                                             int.from_bytes(sig[n:], "big"))
        public.verify(sig, b"signed in the token", ec.ECDSA(h))
    check = _ok(server.post(f"/v1/keys/{name}/verify", {**body, "signature": b64(
        unb64(str(_ok(server.post(f"/v1/keys/{name}/sign", body))["signature"])))}))
    assert check["valid"] is True


def test_hmac_over_http(hsm_server: tuple[ServerProcess, SoftToken]) -> None:
    server, _ = hsm_server
    server.create_key("hmac", algorithm="HMAC_SHA256", protection="hsm")
    tag = _ok(server.post("/v1/keys/hmac/mac", {"message": b64(b"m")}))["mac"]
    assert len(unb64(str(tag))) == 32
    assert _ok(server.post("/v1/keys/hmac/verify-mac", {"message": b64(b"m"),
                                                        "mac": tag}))["valid"] is True
    assert _ok(server.post("/v1/keys/hmac/verify-mac", {"message": b64(b"n"),
                                                        "mac": tag}))["valid"] is False


def test_refusals_over_http(hsm_server: tuple[ServerProcess, SoftToken]) -> None:
    server, _ = hsm_server
    r = server.post("/v1/keys", {"name": "ed", "algorithm": "ED25519", "protection": "hsm"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    assert "AES_256_GCM" in r.json()["detail"]


def test_a_server_with_a_wrong_pin_fails_closed(tmp_path: Path) -> None:
    soft = hsm_token()
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("not-the-pin\n")
    server = ServerProcess(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'kk.db'}",
                           env={**soft.env, "KEYKEEPER_PKCS11_PIN_FILE": str(wrong)})
    try:
        server.start()
        server.init_and_unseal()
        r = server.post("/v1/keys", {"name": "k", "protection": "hsm"})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "unavailable" and "not-the-pin" not in r.text
        software = server.post("/v1/keys", {"name": "soft"})        # software keys still work
        assert software.status_code == 201 and software.json()["protection"] == "software"
        log = (tmp_path / "server.log").read_text()
        assert "not-the-pin" not in log
    finally:
        server.stop()


def test_digest_signing_over_http(hsm_server: tuple[ServerProcess, SoftToken]) -> None:
    server, _ = hsm_server
    server.create_key("digest", algorithm="ECDSA_P256_SHA256", protection="hsm")
    digest = hashlib.sha256(b"prehashed").digest()
    sig = _ok(server.post("/v1/keys/digest/sign", {"digest": b64(digest)}))["signature"]
    assert _ok(server.post("/v1/keys/digest/verify", {"message": b64(b"prehashed"),
                                                      "signature": sig}))["valid"] is True


def test_the_sdk_creates_and_uses_hsm_keys(hsm_server: tuple[ServerProcess, SoftToken]) -> None:
    from keykeeper.client import Client

    server, _ = hsm_server
    with Client(server.addr, token=server.root_token) as kk:
        key = kk.create_key("sdk-hsm", algorithm="ECDSA_P384_SHA384", protection="hsm")
        assert key.protection == "hsm"
        signed = kk.sign("sdk-hsm", b"sdk message")
        assert kk.verify("sdk-hsm", signed.signature, b"sdk message").valid is True
