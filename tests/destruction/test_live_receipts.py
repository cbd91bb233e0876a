"""Receipts over REST and the CLI against a live server (both backends): a destroyed
version's receipt, fetched with ``key receipt get`` and checked offline with ``key
receipt verify`` under the server's key or a PEM file; a tampered receipt fails."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from keykeeper.client.receipts import verify_receipt
from tests.support.server import ServerProcess


def cli(server: ServerProcess, *args: str, addr: bool = True) -> Result:
    env: dict[str, str | None] = {"KEYKEEPER_TOKEN": server.root_token,
                                  "KEYKEEPER_ADDR": server.addr if addr else None}
    return CliRunner().invoke(app, list(args), env=env, obj=State())


def test_receipts_over_rest_and_cli(live_server: ServerProcess, tmp_path: Path) -> None:
    s = live_server
    key = s.create_key(f"rc-{secrets.token_hex(4)}")["id"]
    assert s.get(f"/v1/keys/{key}/receipts").json() == {"receipts": []}
    assert s.post(f"/v1/keys/{key}/rotate").status_code == 200
    r = s.post(f"/v1/keys/{key}/versions/1/destroy")
    assert r.status_code == 200 and r.json()["state"] == "destroyed", r.text
    (receipt,) = s.get(f"/v1/keys/{key}/receipts").json()["receipts"]
    r = s.get("/v1/sys/receipt-key", token="")          # public: no token needed
    assert r.status_code == 200, r.text
    pem = r.json()["public_key"]
    assert verify_receipt(receipt, pem).versions == (1,)

    out = tmp_path / "receipts.json"
    res = cli(s, "key", "receipt", "get", key, "--out", str(out))
    assert res.exit_code == 0 and "wrote 1 receipt(s)" in res.stderr, res.stderr
    res = cli(s, "key", "receipt", "verify", str(out))
    assert res.exit_code == 0, res.stderr
    assert "the server's key" in res.stderr and f"valid: {receipt['receipt_id']}" in res.stdout

    pem_file = tmp_path / "receipt-key.pem"
    pem_file.write_text(pem)
    res = cli(s, "key", "receipt", "verify", str(out), "--public-key", str(pem_file),
              addr=False)
    assert res.exit_code == 0 and f"--public-key {pem_file}" in res.stderr

    tampered = json.loads(out.read_text())
    tampered[0]["destroyed_by"] = "someone else"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    res = cli(s, "key", "receipt", "verify", str(bad))
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: receipt_invalid:")

    other = tmp_path / "other.pem"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    res = cli(s, "key", "receipt", "verify", str(out), "--public-key", str(other), addr=False)
    assert res.exit_code == 1 and "different key" in res.stderr
    res = cli(s, "key", "receipt", "verify", str(out), addr=False)
    assert res.exit_code == 2 and "no trusted key" in res.stderr


def test_receipts_stay_readable_after_compromise(live_server: ServerProcess) -> None:
    s = live_server
    key = s.create_key(f"rd-{secrets.token_hex(4)}")["id"]
    s.post(f"/v1/keys/{key}/rotate")
    s.post(f"/v1/keys/{key}/versions/1/destroy")
    assert s.post(f"/v1/keys/{key}/compromise", {"reason": "x"}).status_code == 200
    r = s.get(f"/v1/keys/{key}/receipts")
    assert r.status_code == 200 and len(r.json()["receipts"]) == 1
    r = s.get("/v1/keys/k-" + "0" * 32 + "/receipts")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
