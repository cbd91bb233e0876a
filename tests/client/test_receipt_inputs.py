"""client/receipts.py on malformed input: every one is ReceiptInvalid with a reason,
never TypeError, RecursionError or UnicodeDecodeError; field types are strict (a JSON
boolean is not an integer, although bool subclasses int in Python)."""

from __future__ import annotations

import copy
import json
import os
from base64 import b64encode as b64
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keykeeper.client import receipts
from keykeeper.client.receipts import ReceiptInvalid, canonical_bytes, verify_receipt
from keykeeper.crypto.registry import Purpose
from keykeeper.custody.keyring import Custody
from keykeeper.domain.keys import Key
from keykeeper.domain.states import KeyState
from keykeeper.service.receipts import ErasedVersion, ReceiptSigner

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _signed() -> tuple[dict[str, Any], str]:
    custody = Custody()
    custody.unseal(os.urandom(32))
    signer = ReceiptSigner(custody)
    key = Key(id="k-" + "1" * 32, namespace="pki", name="ca", purpose=Purpose.SIGN,
              algorithm="ECDSA_P256_SHA256", state=KeyState.DESTROYED, primary_version=1,
              created_at=AT, updated_at=AT, labels=MappingProxyType({}))
    _, text = signer.sign(key=key, scope="key",
                          versions=[ErasedVersion(1, "destroyed", AT, "ab" * 32)],
                          requested_by="alice", destroyed_by="bob", approval_id=None, at=AT)
    return json.loads(text), signer.public_key_pem()


def _resign(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``doc`` validly signed by a fresh key embedded in it: only the field checks stand
    between it and acceptance."""
    priv = Ed25519PrivateKey.generate()
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    doc = {**doc, "public_key": pem.decode()}
    doc["signature"] = b64(priv.sign(canonical_bytes(doc))).decode()
    return doc, pem.decode()


def test_a_valid_receipt_still_verifies() -> None:
    doc, pem = _signed()
    assert verify_receipt(doc, pem).versions == (1,)
    doc2, pem2 = _resign(doc)
    assert verify_receipt(json.dumps(doc2), pem2).versions == (1,)


@pytest.mark.parametrize("text", ["[1,2]", "null", "1", '"x"', "[" * 100_000 + "]" * 100_000,
                                  '{"a": NaN}', '{"a": 1, "a": 2}', b"\xff\xfe{",
                                  ""])
def test_malformed_json_text_is_receipt_invalid(text: str | bytes) -> None:
    with pytest.raises(ReceiptInvalid):
        verify_receipt(text)


@pytest.mark.parametrize("value", [None, 1, [1, 2], 1.5])
def test_a_non_document_argument_is_receipt_invalid(value: Any) -> None:
    with pytest.raises(ReceiptInvalid, match="JSON object"):
        verify_receipt(value)


def test_deep_nesting_inside_a_dict_is_receipt_invalid() -> None:
    doc, _ = _signed()
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    doc["extra"] = deep
    with pytest.raises(ReceiptInvalid):
        verify_receipt(doc)


@pytest.mark.parametrize(("path", "value", "reason"), [
    (("remaining_wrapped_copies",), False, "remaining_wrapped_copies must be an integer"),
    (("remaining_wrapped_copies",), 0.0, "remaining_wrapped_copies must be an integer"),
    (("remaining_wrapped_copies",), "0", "remaining_wrapped_copies must be an integer"),
    (("remaining_wrapped_copies",), 1, "no wrapped copy remains"),
    (("versions", 0, "version"), True, r"versions\[0\].version must be an integer"),
    (("versions", 0, "version"), 1.0, r"versions\[0\].version must be an integer"),
    (("versions", 0, "version"), 0, r"versions\[0\].version must be an integer"),
    (("versions",), [], "versions must be a non-empty array"),
    (("versions",), {"version": 1}, "versions must be a non-empty array"),
    (("versions", 0), 1, r"versions\[0\] must be an object"),
    (("versions", 0, "wrapped_sha256"), 5, "wrapped_sha256 must be a string or null"),
    (("receipt_id",), 7, "receipt_id must be a string"),
    (("namespace",), ["pki"], "namespace must be a string"),
    (("time",), None, "time must be a string"),
    (("approval_id",), 3, "approval_id must be a string or null"),
    (("scope",), None, "scope must be a string"),
])
def test_field_types_are_strict(path: tuple[Any, ...], value: Any, reason: str) -> None:
    doc, _ = _signed()
    doc = copy.deepcopy(doc)
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    forged, pem = _resign(doc)          # a valid signature: the type check must refuse it
    with pytest.raises(ReceiptInvalid, match=reason):
        verify_receipt(forged, pem)


def test_a_non_string_embedded_key_is_refused() -> None:
    doc, pem = _signed()
    with pytest.raises(ReceiptInvalid, match="public_key must be a string"):
        verify_receipt({**doc, "public_key": 5}, pem)


def test_a_trusted_rsa_key_is_refused_with_a_clear_reason() -> None:
    doc, _ = _signed()
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(
    ).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ReceiptInvalid, match="must be an Ed25519 public key in PEM"):
        verify_receipt(doc, rsa_pem)
    for junk in (b"\x00\xff\x10binary", "", "-----BEGIN PUBLIC KEY-----\nxx\n"):
        with pytest.raises(ReceiptInvalid, match="must be an Ed25519 public key in PEM"):
            receipts.load_public_key(junk)
