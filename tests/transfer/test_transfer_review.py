"""Review of key import and export (issue 6 §3, §4) against a real server, both backends:
PEM with junk around it is refused (and the import token stays unspent), and the
documented ``keykeeper key import ... --format raw`` works through the real entry point."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.server import ServerProcess, b64

from .client_side import rsa_key, spki_pem, wrap


def _name() -> str:
    return "review-" + secrets.token_hex(4)


def _params(server: ServerProcess, name: str) -> dict[str, Any]:
    r = server.post(f"/v1/keys/{name}/import-parameters", {})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_pem_with_trailing_junk_is_refused_and_the_token_stays_unspent(
        live_server: ServerProcess) -> None:
    s = live_server
    name = _name()
    s.create_key(name, algorithm="ECDSA_P256_SHA256", purpose="sign", origin="external")
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption())
    params = _params(s, name)

    def send(material: bytes) -> Any:
        return s.post(f"/v1/keys/{name}/import", {
            "import_token": params["import_token"], "format": "sec1",
            "wrapped_key_material": b64(wrap(params["public_key"], material,
                                             params["wrapping_algorithm"]))})

    for junk in (pem + b"TRAILING JUNK\n", pem + b"\x00\xff", b"junk\n" + pem):
        r = send(junk)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    assert s.get(f"/v1/keys/{name}").json()["primary_version"] == 0
    r = send(pem + b"\n\n")                   # whitespace around the block is fine
    assert r.status_code == 200 and r.json()["primary_version"] == 1, r.text


def test_export_refuses_a_wrapping_public_key_with_junk(live_server: ServerProcess) -> None:
    s = live_server
    name = _name()
    s.create_key(name, algorithm="AES_256_GCM", exportable=True)
    good = spki_pem(rsa_key(3072))
    for bad in (good + "JUNK", good + "-----BEGIN PUBLIC KEY-----\n", "x\n" + good):
        r = s.post(f"/v1/keys/{name}/export", {"wrapping_public_key": bad})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    r = s.post(f"/v1/keys/{name}/export", {"wrapping_public_key": good + "\n"})
    assert r.status_code == 200, r.text


def test_cli_key_import_format_raw_through_the_entry_point(live_server: ServerProcess,
                                                           tmp_path: Path) -> None:
    s = live_server
    name = _name()
    s.create_key(name, algorithm="AES_256_GCM", origin="external")
    params = _params(s, name)
    wrapped = tmp_path / "wrapped.bin"
    wrapped.write_bytes(wrap(params["public_key"], os.urandom(32),
                             params["wrapping_algorithm"]))
    env = {**os.environ, "KEYKEEPER_ADDR": s.addr, "KEYKEEPER_TOKEN": s.root_token}
    # As docs/import-export.md writes it: the command's --format is the material's format
    # (raw), while --format json (the output) may still come anywhere.
    r = subprocess.run([sys.executable, "-m", "keykeeper", "key", "import", name,
                        "--import-token", params["import_token"], "--material-file",
                        str(wrapped), "--format", "raw", "--format", "json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["primary_version"] == 1
