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
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["FORMAT", "ReceiptInvalid", "VerifiedReceipt", "canonical_bytes", "fingerprint",
           "load_public_key", "parse_json", "verify_receipt"]

FORMAT = "keykeeper-destruction-receipt/v1"
_REQUIRED = ("receipt_id", "key_id", "namespace", "name", "algorithm", "versions",
             "requested_by", "destroyed_by", "time", "remaining_wrapped_copies", "public_key",
             "signature")
# Top-level fields that must be JSON strings (format and signature_algorithm are compared
# to their one accepted value); "scope" and "approval_id" may be absent, approval_id null.
_STRINGS = ("receipt_id", "key_id", "namespace", "name", "algorithm", "requested_by",
            "destroyed_by", "time", "public_key", "signature")


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
    """The bytes the signature covers (every field but ``signature``). Raises
    :class:`ReceiptInvalid` if ``document`` cannot be written as standard JSON (NaN,
    nesting deeper than the interpreter's recursion limit, a non-JSON value)."""
    body = {k: v for k, v in document.items() if k != "signature"}
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        raise ReceiptInvalid("not a JSON document (a non-JSON value, NaN, or nesting "
                             "too deep)") from None
    return text.encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for k, v in pairs:
        if k in doc:
            raise ValueError(f"duplicate field {k!r}")
        doc[k] = v
    return doc


def parse_json(text: str | bytes) -> Any:
    """Strict RFC 8259 JSON: no NaN/Infinity, no duplicate object field. Raises
    :class:`ReceiptInvalid` for anything else, including text that is not UTF-8 and
    nesting deeper than the interpreter's recursion limit."""
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeError, RecursionError):
        raise ReceiptInvalid("not a JSON document (or nested too deeply)") from None


def load_public_key(pem: str | bytes, what: str = "the trusted public key") -> Ed25519PublicKey:
    """The Ed25519 public key in ``pem`` (PEM SubjectPublicKeyInfo, RFC 8410). Raises
    :class:`ReceiptInvalid` naming ``what`` for anything else (another algorithm,
    DER, binary junk)."""
    expected = f"{what} must be an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----)"
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm):
        raise ReceiptInvalid(expected) from None
    if not isinstance(key, Ed25519PublicKey):
        kind = type(key).__name__.removeprefix("_").removesuffix("PublicKey")
        raise ReceiptInvalid(f"{what} is not an Ed25519 public key (it is {kind}): it must "
                             "be an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----)")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:`` and the first 32 hex digits of SHA-256 over the raw 32-byte key."""
    return "sha256:" + hashlib.sha256(_raw(key)).hexdigest()[:32]


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _is_int(value: Any) -> bool:
    # bool is a subclass of int in Python; JSON true/false are not numbers.
    return type(value) is int


def _check_shape(doc: dict[str, Any]) -> None:
    """Every field the verifier reads has its documented JSON type
    (docs/destruction-receipts.md); raises ReceiptInvalid naming the first that does not."""
    missing = [f for f in _REQUIRED if f not in doc]
    if missing:
        raise ReceiptInvalid(f"missing field(s): {', '.join(missing)}")
    if doc.get("format") != FORMAT or doc.get("signature_algorithm") != "Ed25519":
        raise ReceiptInvalid(f"unknown format (expected {FORMAT}, Ed25519)")
    for name in _STRINGS:
        if not isinstance(doc[name], str):
            raise ReceiptInvalid(f"{name} must be a string")
    if "scope" in doc and not isinstance(doc["scope"], str):
        raise ReceiptInvalid("scope must be a string")
    if doc.get("approval_id") is not None and not isinstance(doc["approval_id"], str):
        raise ReceiptInvalid("approval_id must be a string or null")
    if not _is_int(doc["remaining_wrapped_copies"]):
        raise ReceiptInvalid("remaining_wrapped_copies must be an integer")
    versions = doc["versions"]
    if not isinstance(versions, list) or not versions:
        raise ReceiptInvalid("versions must be a non-empty array")
    for n, entry in enumerate(versions):
        if not isinstance(entry, dict):
            raise ReceiptInvalid(f"versions[{n}] must be an object")
        if not _is_int(entry.get("version")) or entry["version"] < 1:
            raise ReceiptInvalid(f"versions[{n}].version must be an integer >= 1")
        for name in ("state", "destroyed_at"):
            if name in entry and not isinstance(entry[name], str):
                raise ReceiptInvalid(f"versions[{n}].{name} must be a string")
        sha = entry.get("wrapped_sha256")
        if sha is not None and not isinstance(sha, str):
            raise ReceiptInvalid(f"versions[{n}].wrapped_sha256 must be a string or null")


def verify_receipt(receipt: str | bytes | dict[str, Any],
                   trusted_public_key: str | bytes | None = None) -> VerifiedReceipt:
    """Verify one receipt (its JSON text, or the parsed object) under
    ``trusted_public_key`` (PEM). With None, only the receipt's own embedded key is used:
    that proves integrity, not origin -- pass the key you trust.

    Checks, in order: the shape of every field (strings are strings, versions are
    integers >= 1 and not booleans, ``remaining_wrapped_copies`` an integer), the
    embedded key is Ed25519 and equals the trusted one, the Ed25519 signature (RFC 8032)
    over :func:`canonical_bytes`, and ``remaining_wrapped_copies`` is exactly 0.
    Raises :class:`ReceiptInvalid` (one line) for any malformed or failing input."""
    if isinstance(receipt, dict):
        doc: Any = receipt
    elif isinstance(receipt, str | bytes):
        doc = parse_json(receipt)
    else:
        raise ReceiptInvalid(f"a receipt is a JSON object, not {type(receipt).__name__}")
    if not isinstance(doc, dict):
        raise ReceiptInvalid("not a JSON object")
    _check_shape(doc)
    embedded = load_public_key(doc["public_key"], "the receipt's public_key")
    if trusted_public_key is not None:
        trusted = load_public_key(trusted_public_key, "the trusted public key")
        if _raw(trusted) != _raw(embedded):
            raise ReceiptInvalid("signed by a different key than the trusted one")
    signed = canonical_bytes(doc)
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
        embedded.verify(signature, signed)
    except (binascii.Error, ValueError, InvalidSignature):
        raise ReceiptInvalid("signature does not verify: the receipt was altered or "
                             "not signed by this key") from None
    if doc["remaining_wrapped_copies"] != 0:
        raise ReceiptInvalid("the receipt does not confirm that no wrapped copy remains")
    versions = doc["versions"]
    return VerifiedReceipt(receipt_id=doc["receipt_id"], key_id=doc["key_id"],
                           key=f"{doc['namespace']}:{doc['name']}",
                           versions=tuple(v["version"] for v in versions),
                           time=doc["time"], document=doc)
