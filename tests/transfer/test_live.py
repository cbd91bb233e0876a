"""Import and export over REST against a real server (both backends): the outside client
uses only httpx and pyca/cryptography; the audit trail names the wrapping key's
fingerprint and never holds material."""

from __future__ import annotations

import base64
import json
import os
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.server import ServerProcess, b64

from .client_side import rsa_key, spki_pem, unwrap, wrap


def _name() -> str:
    return "xfer-" + secrets.token_hex(4)


def test_import_export_round_trip_over_rest(live_server: ServerProcess) -> None:
    s = live_server
    name = _name()
    key = s.create_key(name, algorithm="AES_256_GCM", origin="external", exportable=True)
    assert key["origin"] == "external" and key["primary_version"] == 0
    assert key["state"] == "pre-active"
    r = s.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"x")})
    assert r.status_code == 409 and r.json()["code"] == "failed_precondition", r.text
    assert s.post(f"/v1/keys/{name}/rotate").status_code == 409

    p = s.post(f"/v1/keys/{name}/import-parameters", {"expires_in": "1h"})
    assert p.status_code == 200, p.text
    params = p.json()
    assert params["wrapping_algorithm"] == "RSA_AES_KEY_WRAP_SHA256"
    public = serialization.load_pem_public_key(params["public_key"].encode())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 4096
    material = b"\x00\x00" + os.urandom(30)
    body = {"import_token": params["import_token"], "format": "raw",
            "wrapped_key_material": b64(wrap(params["public_key"], material,
                                             params["wrapping_algorithm"]))}
    r = s.post(f"/v1/keys/{name}/import", body)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active" and r.json()["primary_version"] == 1
    again = s.post(f"/v1/keys/{name}/import", body)
    assert again.status_code == 400 and "already been used" in again.json()["detail"]

    ct = s.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"hello")}).json()
    assert s.post(f"/v1/keys/{name}/decrypt", {"ciphertext": ct["ciphertext"]}).status_code \
        == 200

    caller = rsa_key(3072)
    r = s.post(f"/v1/keys/{name}/export", {"wrapping_public_key": spki_pem(caller)})
    assert r.status_code == 200, r.text  # root bypasses dual control
    out = r.json()
    assert out["format"] == "raw" and out["key_version"] == 1
    got = unwrap(caller, base64.b64decode(out["wrapped_key_material"]),
                 out["wrapping_algorithm"])
    assert got == material

    audit = (s.data_dir / "audit.log").read_text()
    records = [json.loads(line) for line in audit.splitlines()]
    exports = [x for x in records if x["operation"] == "key.export"
               and x.get("phase") == "response"]
    assert exports and exports[-1]["wrapping_key_fingerprint"] == out[
        "wrapping_key_fingerprint"]
    imports = [x for x in records if x["operation"] == "key.import"
               and x.get("phase") == "response" and x["outcome"] == "success"]
    assert imports and imports[-1]["wrapping_key_fingerprint"] == params[
        "wrapping_key_fingerprint"]
    for secret in (material.hex(), base64.b64encode(material).decode(),
                   params["import_token"], out["wrapped_key_material"]):
        assert secret not in audit


def test_public_key_import_and_refusals_over_rest(live_server: ServerProcess) -> None:
    s = live_server
    name = _name()
    s.create_key(name, algorithm="ECDSA_P256_SHA256", origin="external")
    params = s.post(f"/v1/keys/{name}/import-parameters",
                    {"wrapping_algorithm": "RSA_OAEP_SHA256"}).json()
    private = ec.generate_private_key(ec.SECP256R1())
    spki = private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    # tampered first: one uniform invalid_argument, the token still good
    bad = bytearray(wrap(params["public_key"], spki[:200], "RSA_OAEP_SHA256"))
    bad[5] ^= 1
    r = s.post(f"/v1/keys/{name}/import", {"import_token": params["import_token"],
                                           "format": "spki", "wrapped_key_material":
                                           b64(bytes(bad))})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    # a PEM SPKI is too long for one OAEP block: RSA-AES key wrap needed; send DER instead
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    r = s.post(f"/v1/keys/{name}/import", {"import_token": params["import_token"],
                                           "format": "spki", "wrapped_key_material":
                                           b64(wrap(params["public_key"], der,
                                                    "RSA_OAEP_SHA256"))})
    assert r.status_code == 200, r.text
    r = s.post(f"/v1/keys/{name}/sign", {"message": b64(b"m")})
    assert r.status_code == 409 and "public key only" in r.json()["detail"]
    r = s.post(f"/v1/keys/{name}/export", {"wrapping_public_key": spki_pem(rsa_key(3072))})
    assert r.status_code == 409 and "not created exportable" in r.json()["detail"]
    r = s.request("PATCH", f"/v1/keys/{name}", {"exportable": True})
    assert r.status_code == 400, r.text
    r = s.post("/v1/keys", {"name": _name(), "exportable": True, "protection": "hsm"})
    assert r.status_code == 400, r.text
