"""Signed destruction receipts: proof that a key's (or a version's) material was erased.

A receipt is one JSON object (docs/destruction-receipts.md)::

    {"format": "keykeeper-destruction-receipt/v1", "receipt_id": "dr-...",
     "scope": "key" | "version", "key_id": ..., "namespace": ..., "name": ...,
     "algorithm": ..., "versions": [{"version": 1, "state": "destroyed",
     "destroyed_at": RFC 3339, "wrapped_sha256": hex | null}], "requested_by": ...,
     "destroyed_by": ..., "approval_id": ... | null, "time": RFC 3339,
     "remaining_wrapped_copies": 0, "public_key": PEM (SPKI),
     "signature_algorithm": "Ed25519", "signature": base64}

``signature`` is Ed25519 (RFC 8032) over the *canonical bytes*: the object without
``signature``, serialized as JSON with sorted keys, no whitespace and ASCII escapes
(``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)``), UTF-8. The
signing key is derived from the root key through custody (HKDF-SHA256, RFC 5869, with
its own ``info``), so every node of a deployment signs with the same key while unsealed,
and its public key is served at ``GET /v1/sys/receipt-key``.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keykeeper.custody.keyring import Custody
from keykeeper.domain.keys import Key
from keykeeper.service.identity_views import rfc3339

__all__ = ["FORMAT", "INFO_RECEIPT", "ErasedVersion", "ReceiptSigner", "canonical_bytes"]

FORMAT = "keykeeper-destruction-receipt/v1"
INFO_RECEIPT = b"keykeeper/destruction-receipt/ed25519/v1"


def canonical_bytes(document: dict[str, Any]) -> bytes:
    """The bytes a receipt's signature covers: every field but ``signature``, as JSON
    with sorted keys, no whitespace and ASCII escapes."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True, slots=True)
class ErasedVersion:
    """One version in a receipt: its state after erasure, when, and the SHA-256 (hex) of
    the wrapped blob erased (None when it had been erased before, by an earlier receipt)."""

    version: int
    state: str
    destroyed_at: datetime
    wrapped_sha256: str | None


class ReceiptSigner:
    """Builds and signs receipts with the key derived from the root key."""

    def __init__(self, custody: Custody) -> None:
        self._custody = custody

    def _private(self) -> Ed25519PrivateKey:
        """Raises Sealed while sealed."""
        return Ed25519PrivateKey.from_private_bytes(self._custody.derive(INFO_RECEIPT, 32))

    def public_key_pem(self) -> str:
        """The receipt-signing public key (PEM, SubjectPublicKeyInfo). Raises Sealed."""
        return self._private().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, *, key: Key, scope: str, versions: Sequence[ErasedVersion],
             requested_by: str, destroyed_by: str, approval_id: str | None,
             at: datetime) -> tuple[str, str]:
        """A new signed receipt: ``(receipt_id, JSON text)``. Raises Sealed."""
        private = self._private()
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        receipt_id = "dr-" + secrets.token_hex(16)
        doc: dict[str, Any] = {
            "format": FORMAT, "receipt_id": receipt_id, "scope": scope, "key_id": key.id,
            "namespace": key.namespace, "name": key.name, "algorithm": key.algorithm,
            "versions": [{"version": v.version, "state": v.state,
                          "destroyed_at": rfc3339(v.destroyed_at),
                          "wrapped_sha256": v.wrapped_sha256} for v in versions],
            "requested_by": requested_by, "destroyed_by": destroyed_by,
            "approval_id": approval_id, "time": rfc3339(at), "remaining_wrapped_copies": 0,
            "public_key": public, "signature_algorithm": "Ed25519",
        }
        doc["signature"] = base64.b64encode(private.sign(canonical_bytes(doc))).decode()
        return receipt_id, json.dumps(doc, sort_keys=True)
