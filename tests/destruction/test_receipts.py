"""Receipts: signed by the key derived from the root key, verified offline by
client/receipts.py; any change to a receipt, or another signing key, fails."""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keykeeper.client.receipts import ReceiptInvalid, verify_receipt
from keykeeper.crypto.registry import Purpose
from keykeeper.custody.keyring import Custody
from keykeeper.domain.keys import Key
from keykeeper.domain.states import KeyState
from keykeeper.service.receipts import ErasedVersion, ReceiptSigner

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _signer(root: bytes) -> ReceiptSigner:
    custody = Custody()
    custody.unseal(root)
    return ReceiptSigner(custody)


def _receipt(signer: ReceiptSigner) -> dict[str, Any]:
    key = Key(id="k-" + "1" * 32, namespace="pki", name="root-ca", purpose=Purpose.SIGN,
              algorithm="ECDSA_P256_SHA256", state=KeyState.DESTROYED, primary_version=2,
              created_at=AT, updated_at=AT, labels=MappingProxyType({}))
    _, text = signer.sign(key=key, scope="key", versions=[
        ErasedVersion(1, "destroyed", AT, "ab" * 32), ErasedVersion(2, "destroyed", AT, None)],
        requested_by="alice", destroyed_by="scheduler", approval_id=None, at=AT)
    doc: dict[str, Any] = json.loads(text)
    return doc


def test_a_receipt_verifies_under_the_derived_key() -> None:
    root = os.urandom(32)
    signer = _signer(root)
    doc = _receipt(signer)
    checked = verify_receipt(json.dumps(doc), signer.public_key_pem())
    assert checked.key == "pki:root-ca" and checked.versions == (1, 2)
    assert _signer(root).public_key_pem() == signer.public_key_pem()   # same on every node
    assert _signer(os.urandom(32)).public_key_pem() != signer.public_key_pem()


@pytest.mark.parametrize(("field", "value"), [
    ("destroyed_by", "mallory"), ("key_id", "k-" + "2" * 32), ("time", "2026-03-02T00:00:00Z"),
    ("remaining_wrapped_copies", 1), ("extra", "x"),
])
def test_any_change_fails(field: str, value: Any) -> None:
    signer = _signer(os.urandom(32))
    doc = _receipt(signer)
    doc[field] = value
    with pytest.raises(ReceiptInvalid):
        verify_receipt(doc, signer.public_key_pem())


def test_a_changed_version_entry_fails() -> None:
    signer = _signer(os.urandom(32))
    doc = copy.deepcopy(_receipt(signer))
    doc["versions"][0]["wrapped_sha256"] = "cd" * 32
    with pytest.raises(ReceiptInvalid, match="signature does not verify"):
        verify_receipt(doc, signer.public_key_pem())


def test_a_receipt_re_signed_by_another_key_is_refused() -> None:
    trusted = _signer(os.urandom(32))
    forger = _signer(os.urandom(32))
    forged = _receipt(forger)     # valid under its own embedded key
    verify_receipt(forged)        # integrity only, without a trusted key
    with pytest.raises(ReceiptInvalid, match="different key"):
        verify_receipt(forged, trusted.public_key_pem())


@pytest.mark.parametrize("bad", ["", "[]", "{}", "not json", '{"format": "x"}'])
def test_malformed_documents_are_refused(bad: str) -> None:
    with pytest.raises(ReceiptInvalid):
        verify_receipt(bad)


def test_a_non_ed25519_trusted_key_is_refused() -> None:
    doc = _receipt(_signer(os.urandom(32)))
    from cryptography.hazmat.primitives.asymmetric import ec
    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ReceiptInvalid, match="not an Ed25519"):
        verify_receipt(doc, pem)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ReceiptInvalid):
        verify_receipt(doc, other)
