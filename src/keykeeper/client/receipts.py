"""Offline verification of keykeeper destruction receipts (pyca/cryptography and json only).

A receipt (docs/destruction-receipts.md) is one JSON object whose ``signature`` is
Ed25519 (RFC 8032) over its *canonical bytes*: the object without ``signature``, as JSON
with sorted keys, no whitespace and ASCII escapes, UTF-8. Verifying checks that the
signature is valid under the public key you trust, that the key embedded in the receipt
is that key, and that the receipt states that no wrapped copy of the material remains::

    from keykeeper.client.receipts import verify_receipt
    receipt = verify_receipt(open("receipt.json", "rb").read(), trusted_pem)

This module talks to no server: fetch the trusted key once (``GET /v1/sys/receipt-key``,
or :meth:`keykeeper.client.Client.receipt_public_key`) and keep it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["FORMAT", "ReceiptInvalid", "VerifiedReceipt", "canonical_bytes", "verify_receipt"]

FORMAT = "keykeeper-destruction-receipt/v1"
_REQUIRED = ("receipt_id", "key_id", "namespace", "name", "algorithm", "versions",
             "requested_by", "destroyed_by", "time", "remaining_wrapped_copies", "public_key",
             "signature")


class ReceiptInvalid(ValueError):
    """The receipt is malformed, its signature does not verify, or it is signed by a key
    other than the trusted one. The message is one line, safe to print."""


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    receipt_id: str
    key_id: str
    key: str                       # namespace:name
    versions: tuple[int, ...]
    time: str                      # RFC 3339
    document: dict[str, Any]       # the whole receipt


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The bytes the signature covers (every field but ``signature``)."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _public_key(pem: str | bytes, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError, UnicodeError):
        raise ReceiptInvalid(f"{what} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ReceiptInvalid(f"{what} is not an Ed25519 public key")
    return key


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_receipt(receipt: str | bytes | dict[str, Any],
                   trusted_public_key: str | bytes | None = None) -> VerifiedReceipt:
    """Verify one receipt (its JSON text, or the parsed object) under
    ``trusted_public_key`` (PEM). With None, only the receipt's own embedded key is used:
    that proves integrity, not origin -- pass the key you trust. Raises
    :class:`ReceiptInvalid`."""
    if isinstance(receipt, dict):
        doc = receipt
    else:
        try:
            doc = json.loads(receipt)
        except (ValueError, UnicodeError):
            raise ReceiptInvalid("not a JSON document") from None
    if not isinstance(doc, dict):
        raise ReceiptInvalid("not a JSON object")
    missing = [f for f in _REQUIRED if f not in doc]
    if missing:
        raise ReceiptInvalid(f"missing field(s): {', '.join(missing)}")
    if doc.get("format") != FORMAT or doc.get("signature_algorithm") != "Ed25519":
        raise ReceiptInvalid(f"unknown format (expected {FORMAT}, Ed25519)")
    embedded = _public_key(str(doc["public_key"]), "the receipt's public_key")
    if trusted_public_key is not None:
        trusted = _public_key(trusted_public_key, "the trusted public key")
        if _raw(trusted) != _raw(embedded):
            raise ReceiptInvalid("signed by a different key than the trusted one")
    try:
        signature = base64.b64decode(str(doc["signature"]), validate=True)
        embedded.verify(signature, canonical_bytes(doc))
    except (binascii.Error, ValueError, InvalidSignature):
        raise ReceiptInvalid("signature does not verify: the receipt was altered or "
                             "not signed by this key") from None
    if doc["remaining_wrapped_copies"] != 0:
        raise ReceiptInvalid("the receipt does not confirm that no wrapped copy remains")
    versions = doc["versions"]
    if not isinstance(versions, list) or not all(
            isinstance(v, dict) and isinstance(v.get("version"), int) for v in versions):
        raise ReceiptInvalid("versions is malformed")
    return VerifiedReceipt(receipt_id=str(doc["receipt_id"]), key_id=str(doc["key_id"]),
                           key=f"{doc['namespace']}:{doc['name']}",
                           versions=tuple(int(v["version"]) for v in versions),
                           time=str(doc["time"]), document=doc)
