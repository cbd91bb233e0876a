"""``keykeeper key receipt verify`` on hostile files: one line ``error: receipt_invalid:
...`` and exit 1, never a traceback; an unreadable file is a usage error (exit 2)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from keykeeper.crypto.registry import Purpose
from keykeeper.custody.keyring import Custody
from keykeeper.domain.keys import Key
from keykeeper.domain.states import KeyState
from keykeeper.service.receipts import ErasedVersion, ReceiptSigner

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def signed(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """A valid receipt and the trusted key's PEM file."""
    custody = Custody()
    custody.unseal(os.urandom(32))
    signer = ReceiptSigner(custody)
    key = Key(id="k-" + "1" * 32, namespace="pki", name="ca", purpose=Purpose.SIGN,
              algorithm="ECDSA_P256_SHA256", state=KeyState.DESTROYED, primary_version=1,
              created_at=AT, updated_at=AT, labels=MappingProxyType({}))
    _, text = signer.sign(key=key, scope="key",
                          versions=[ErasedVersion(1, "destroyed", AT, "ab" * 32)],
                          requested_by="alice", destroyed_by="bob", approval_id=None, at=AT)
    pem = tmp_path / "trusted.pem"
    pem.write_text(signer.public_key_pem())
    return json.loads(text), pem


def verify(*args: str) -> Result:
    env = {"KEYKEEPER_ADDR": "", "KEYKEEPER_TOKEN": ""}
    return CliRunner().invoke(app, ["key", "receipt", "verify", *args], env=env, obj=State())


def _one_line_error(res: Result, code: int = 1) -> str:
    assert res.exit_code == code, (res.exit_code, res.stderr, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_a_valid_receipt_and_an_array_verify(signed: tuple[dict[str, Any], Path],
                                             tmp_path: Path) -> None:
    doc, pem = signed
    f = tmp_path / "r.json"
    f.write_text(json.dumps([doc, doc]))
    res = verify(str(f), "--public-key", str(pem))
    assert res.exit_code == 0, res.stderr
    assert res.stdout.count("valid: ") == 2


@pytest.mark.parametrize("content", [
    b"[1,2]", b"null", b"7", b"[]", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe\x00",
    b'{"a": NaN}', b"",
])
def test_malformed_receipt_files_are_one_line(signed: tuple[dict[str, Any], Path],
                                              tmp_path: Path, content: bytes) -> None:
    _, pem = signed
    f = tmp_path / "r.json"
    f.write_bytes(content)
    line = _one_line_error(verify(str(f), "--public-key", str(pem)))
    assert line.startswith("error: receipt_invalid: "), line


def test_a_string_element_is_not_decoded_twice(signed: tuple[dict[str, Any], Path],
                                               tmp_path: Path) -> None:
    doc, pem = signed
    f = tmp_path / "r.json"
    f.write_text(json.dumps([json.dumps(doc)]))      # a receipt smuggled in as a string
    line = _one_line_error(verify(str(f), "--public-key", str(pem)))
    assert line == f"error: receipt_invalid: element 1 of {f} is not a receipt (a JSON object)"


def test_a_bool_for_remaining_copies_is_refused(signed: tuple[dict[str, Any], Path],
                                                tmp_path: Path) -> None:
    doc, pem = signed
    f = tmp_path / "r.json"
    f.write_text(json.dumps({**doc, "remaining_wrapped_copies": False}))
    line = _one_line_error(verify(str(f), "--public-key", str(pem)))
    assert line == ("error: receipt_invalid: remaining_wrapped_copies must be an integer")


def test_the_failing_receipt_of_an_array_is_named(signed: tuple[dict[str, Any], Path],
                                                  tmp_path: Path) -> None:
    doc, pem = signed
    f = tmp_path / "r.json"
    f.write_text(json.dumps([doc, {**doc, "destroyed_by": "mallory"}]))
    line = _one_line_error(verify(str(f), "--public-key", str(pem)))
    assert line.startswith("error: receipt_invalid: receipt 2 of 2: signature does not"), line


def test_a_binary_public_key_file(signed: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    doc, _ = signed
    f, junk = tmp_path / "r.json", tmp_path / "junk.pem"
    f.write_text(json.dumps(doc))
    junk.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" + os.urandom(64))
    line = _one_line_error(verify(str(f), "--public-key", str(junk)))
    assert line == ("error: receipt_invalid: the trusted public key must be an Ed25519 "
                    "public key in PEM (-----BEGIN PUBLIC KEY-----)")


def test_an_rsa_public_key(signed: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    doc, _ = signed
    f, other = tmp_path / "r.json", tmp_path / "rsa.pem"
    f.write_text(json.dumps(doc))
    other.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048)
                      .public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    line = _one_line_error(verify(str(f), "--public-key", str(other)))
    assert line.startswith("error: receipt_invalid: the trusted public key is not an Ed25519 "
                           "public key (it is RSA): it must be an Ed25519 public key in PEM"), line


def test_missing_files_are_usage_errors(signed: tuple[dict[str, Any], Path],
                                        tmp_path: Path) -> None:
    doc, pem = signed
    f = tmp_path / "r.json"
    f.write_text(json.dumps(doc))
    line = _one_line_error(verify(str(tmp_path / "nope.json"), "--public-key", str(pem)), 2)
    assert line.startswith("error: usage: cannot read receipt file"), line
    line = _one_line_error(verify(str(f), "--public-key", str(tmp_path)), 2)
    assert line.startswith("error: usage: cannot read --public-key"), line


def test_an_endless_public_key_file_is_read_with_a_cap(signed: tuple[dict[str, Any], Path],
                                                       tmp_path: Path) -> None:
    doc, _ = signed
    f = tmp_path / "r.json"
    f.write_text(json.dumps(doc))
    line = _one_line_error(verify(str(f), "--public-key", "/dev/zero"))
    assert line.startswith("error: receipt_invalid: the trusted public key must be"), line
