"""Cryptographic operations over REST for every algorithm, on both backends."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.support.server import ServerProcess, b64, unb64

ENCRYPT = ["AES_128_GCM", "AES_256_GCM", "CHACHA20_POLY1305", "RSA_OAEP_3072_SHA256",
           "RSA_OAEP_4096_SHA256"]
SIGN = ["RSA_PSS_3072_SHA256", "RSA_PSS_4096_SHA256", "RSA_PKCS1_3072_SHA256",
        "RSA_PKCS1_4096_SHA256", "ECDSA_P256_SHA256", "ECDSA_P384_SHA384", "ECDSA_P521_SHA512",
        "ED25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]
MAC = ["HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512"]
KEM = ["ML_KEM_768", "ML_KEM_1024"]
HASHES = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}


def fresh_key(server: ServerProcess, algorithm: str) -> str:
    n = f"{algorithm.lower()}-{secrets.token_hex(3)}"
    server.create_key(n, algorithm=algorithm)
    return n


@pytest.mark.parametrize("algorithm", ENCRYPT)
def test_encrypt_decrypt_with_context(live_server: ServerProcess, algorithm: str) -> None:
    n = fresh_key(live_server, algorithm)
    for plaintext in (b"", b"hello", secrets.token_bytes(300)):
        ctx = {"tenant": "acme", "table": "orders"}
        r = live_server.post(f"/v1/keys/{n}/encrypt", {"plaintext": b64(plaintext), "context": ctx})
        assert r.status_code == 200, r.text
        ct = r.json()["ciphertext"]
        assert ct.startswith("keykeeper:v1:k-")
        back = live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": ct,
                                                          "context": dict(reversed(ctx.items()))})
        assert back.status_code == 200 and back.json()["plaintext"] == b64(plaintext)
        wrong = live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": ct,
                                                           "context": {"tenant": "evil"}})
        assert (wrong.status_code, wrong.json()["detail"]) == (400, "decryption failed")


def test_ciphertext_bound_to_key_and_version(live_server: ServerProcess) -> None:
    a, b = fresh_key(live_server, "AES_256_GCM"), fresh_key(live_server, "AES_256_GCM")
    ct = live_server.post(f"/v1/keys/{a}/encrypt", {"plaintext": b64(b"x")}).json()["ciphertext"]
    errors = set()
    moved = live_server.post(f"/v1/keys/{b}/decrypt", {"ciphertext": ct})
    errors.add((moved.status_code, moved.json()["code"], moved.json()["detail"]))
    live_server.post(f"/v1/keys/{a}/rotate")
    prefix, body = ct.rsplit(":", 1)
    relabelled = prefix[:-1] + "2:" + body  # claims version 2
    for bad in (relabelled, ct[:-4] + "AAAA", "garbage", ct + "=", ct.replace(":v1:", ":v9:")):
        r = live_server.post(f"/v1/keys/{a}/decrypt", {"ciphertext": bad})
        errors.add((r.status_code, r.json()["code"], r.json()["detail"]))
    assert errors == {(400, "decryption_failed", "decryption failed")}


def test_batch_encrypt_decrypt_reports_each_item(live_server: ServerProcess) -> None:
    n = fresh_key(live_server, "AES_256_GCM")
    items = [{"plaintext": b64(b"")}, {"plaintext": b64(b"a"), "context": {"k": "v"}},
             {"plaintext": b64(b"b"), "key_version": 5}]
    r = live_server.post(f"/v1/keys/{n}/encrypt", {"items": items}).json()["items"]
    assert r[0]["key_version"] == 1 and r[1]["key_version"] == 1
    assert r[2]["error"]["code"] == "not_found"
    d = live_server.post(f"/v1/keys/{n}/decrypt", {"items": [
        {"ciphertext": r[0]["ciphertext"]}, {"ciphertext": r[1]["ciphertext"]},
        {"ciphertext": r[1]["ciphertext"], "context": {"k": "v"}}, {"ciphertext": "nope"}]})
    out = d.json()["items"]
    assert out[0]["plaintext"] == "" and out[2]["plaintext"] == b64(b"a")
    assert out[1]["error"]["code"] == "decryption_failed"
    assert out[3]["error"]["code"] == "decryption_failed"
    big = live_server.post(f"/v1/keys/{n}/encrypt", {"items": [{"plaintext": ""}] * 1001})
    assert big.json()["code"] == "invalid_argument"


def test_data_key(live_server: ServerProcess) -> None:
    n = fresh_key(live_server, "AES_256_GCM")
    for spec, size in (("AES_256", 32), ("AES_128", 16)):
        r = live_server.post(f"/v1/keys/{n}/data-key", {"key_spec": spec,
                                                        "context": {"f": "1"}}).json()
        dek = unb64(r["plaintext"])
        assert len(dek) == size
        back = live_server.post(f"/v1/keys/{n}/decrypt", {"ciphertext": r["ciphertext"],
                                                          "context": {"f": "1"}}).json()
        assert unb64(back["plaintext"]) == dek
    wrapped_only = live_server.post(f"/v1/keys/{n}/data-key", {"include_plaintext": False}).json()
    assert "plaintext" not in wrapped_only and wrapped_only["ciphertext"]
    bad = live_server.post(f"/v1/keys/{n}/data-key", {"key_spec": "DES"})
    assert bad.json()["code"] == "invalid_argument"


def _spec_hash(algorithm: str) -> str:
    return next(h for h in HASHES if h in algorithm)


@pytest.mark.parametrize("algorithm", SIGN)
def test_sign_verify_and_public_key(live_server: ServerProcess, algorithm: str) -> None:
    n = fresh_key(live_server, algorithm)
    msg = b"the message"
    sig = live_server.post(f"/v1/keys/{n}/sign", {"message": b64(msg)}).json()
    assert sig["key_version"] == 1
    ok = live_server.post(f"/v1/keys/{n}/verify", {"message": b64(msg),
                                                   "signature": sig["signature"]}).json()
    bad = live_server.post(f"/v1/keys/{n}/verify", {"message": b64(b"other"),
                                                    "signature": sig["signature"]}).json()
    assert ok["valid"] is True and bad["valid"] is False
    pem = live_server.get(f"/v1/keys/{n}/public-key").json()
    assert pem["algorithm"] == algorithm and pem["public_key"].startswith("-----BEGIN PUBLIC KEY")
    public = serialization.load_pem_public_key(pem["public_key"].encode())
    raw_sig = unb64(sig["signature"])
    # Independent verification with pyca/cryptography directly.
    if algorithm.startswith("RSA_PSS"):
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(raw_sig, msg, padding.PSS(padding.MGF1(hashes.SHA256()),
                                                hashes.SHA256().digest_size), hashes.SHA256())
    elif algorithm.startswith("RSA_PKCS1"):
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(raw_sig, msg, padding.PKCS1v15(), hashes.SHA256())
    elif algorithm.startswith("ECDSA"):
        assert isinstance(public, ec.EllipticCurvePublicKey)
        h = getattr(hashes, _spec_hash(algorithm))()
        public.verify(raw_sig, msg, ec.ECDSA(h))
    elif algorithm == "ED25519":
        assert isinstance(public, Ed25519PublicKey)
        public.verify(raw_sig, msg)
    if algorithm.startswith(("RSA", "ECDSA")):
        digest = HASHES[_spec_hash(algorithm)](msg).digest()
        dsig = live_server.post(f"/v1/keys/{n}/sign", {"digest": b64(digest)}).json()
        v = live_server.post(f"/v1/keys/{n}/verify", {"message": b64(msg),
                                                      "signature": dsig["signature"]}).json()
        assert v["valid"] is True
    else:
        r = live_server.post(f"/v1/keys/{n}/sign", {"digest": b64(b"\0" * 32)})
        assert r.json()["code"] == "invalid_argument"


@pytest.mark.parametrize("algorithm,width", [("ECDSA_P256_SHA256", 64),
                                             ("ECDSA_P384_SHA384", 96),
                                             ("ECDSA_P521_SHA512", 132)])
def test_ecdsa_p1363(live_server: ServerProcess, algorithm: str, width: int) -> None:
    n = fresh_key(live_server, algorithm)
    for _ in range(4):
        sig = live_server.post(f"/v1/keys/{n}/sign", {"message": b64(b"m"),
                                                      "signature_format": "p1363"}).json()
        assert len(unb64(sig["signature"])) == width
        v = live_server.post(f"/v1/keys/{n}/verify", {"message": b64(b"m"),
                                                      "signature": sig["signature"],
                                                      "signature_format": "p1363"}).json()
        assert v["valid"] is True
    r = live_server.post(f"/v1/keys/{n}/sign", {"message": b64(b"m"), "signature_format": "jws"})
    assert r.json()["code"] == "invalid_argument"


@pytest.mark.parametrize("algorithm", MAC)
def test_mac(live_server: ServerProcess, algorithm: str) -> None:
    n = fresh_key(live_server, algorithm)
    tag = live_server.post(f"/v1/keys/{n}/mac", {"message": b64(b"m")}).json()
    assert len(unb64(tag["mac"])) == int(algorithm[-3:]) // 8
    ok = live_server.post(f"/v1/keys/{n}/verify-mac", {"message": b64(b"m"), "mac": tag["mac"]})
    assert ok.json()["valid"] is True
    short = b64(unb64(tag["mac"])[:16])
    for msg, mac in ((b"x", tag["mac"]), (b"m", short)):
        r = live_server.post(f"/v1/keys/{n}/verify-mac", {"message": b64(msg), "mac": mac})
        assert r.json()["valid"] is False
    assert live_server.get(f"/v1/keys/{n}/public-key").json()["code"] == "failed_precondition"


@pytest.mark.parametrize("algorithm", KEM)
def test_kem(live_server: ServerProcess, algorithm: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import mlkem
    n = fresh_key(live_server, algorithm)
    enc = live_server.post(f"/v1/keys/{n}/encapsulate").json()
    dec = live_server.post(f"/v1/keys/{n}/decapsulate", {"ciphertext": enc["ciphertext"]}).json()
    assert dec["shared_secret"] == enc["shared_secret"]
    # Encapsulate locally with the public key, decapsulate on the server.
    pem = live_server.get(f"/v1/keys/{n}/public-key").json()["public_key"]
    public = serialization.load_pem_public_key(pem.encode())
    assert isinstance(public, (mlkem.MLKEM768PublicKey, mlkem.MLKEM1024PublicKey))
    secret, ct = public.encapsulate()
    dec = live_server.post(f"/v1/keys/{n}/decapsulate", {"ciphertext": b64(ct)}).json()
    assert unb64(dec["shared_secret"]) == secret
    short = live_server.post(f"/v1/keys/{n}/decapsulate", {"ciphertext": b64(ct[:-1])})
    assert short.json()["code"] == "decryption_failed"


def test_random(live_server: ServerProcess) -> None:
    a = unb64(live_server.post("/v1/random", {"length": 32}).json()["bytes"])
    b = unb64(live_server.post("/v1/random", {"length": 32}).json()["bytes"])
    assert len(a) == 32 and a != b
    for bad in (0, 65537, "x"):
        assert live_server.post("/v1/random", {"length": bad}).json()["code"] == "invalid_argument"


def test_legacy_rsa_and_disallowed_algorithms_refused(live_server: ServerProcess) -> None:
    for algorithm in ("RSA_OAEP_2048_SHA256", "RSA_PSS_2048_SHA256", "HMAC_SHA1", "AES_128_ECB",
                      "NOPE"):
        r = live_server.post("/v1/keys", {"name": secrets.token_hex(4), "algorithm": algorithm})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), algorithm
    mismatch = live_server.post("/v1/keys", {"name": secrets.token_hex(4), "purpose": "sign",
                                             "algorithm": "AES_256_GCM"})
    assert mismatch.json()["code"] == "invalid_argument"
