"""The audit hash chain: keys, line encoding, and the state of one chain.

Every record is one JSON line. Its ``prev`` is the hex SHA-256 of the previous record's
line; its ``hmac`` is HMAC-SHA256 over the line without the authenticators (its
*canonical bytes*, :func:`keykeeper.audit.verify.canonical_bytes`) under the audit key;
a checkpoint adds ``signature``, Ed25519 over the same canonical bytes. All three keys
come from the root key by HKDF-SHA256 (:class:`AuditKeys`), so every node and worker
of one deployment has them while unsealed and none while sealed.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import NamedTuple

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keykeeper.audit.records import AuditRecord
from keykeeper.audit.verify import ZERO_HASH, line_hash

__all__ = [
    "INFO_FIELD",
    "INFO_HMAC",
    "INFO_SIGN",
    "ZERO_HASH",
    "AuditKeys",
    "Chain",
    "ChainHead",
    "encode_line",
]

INFO_HMAC = b"keykeeper/audit/record-hmac/v1"
INFO_FIELD = b"keykeeper/audit/field-hmac/v1"
INFO_SIGN = b"keykeeper/audit/checkpoint-ed25519/v1"
FIELD_PREFIX = "hmac-sha256:"


class _Hmac:
    """HMAC-SHA256 (RFC 2104, pyca/cryptography) with the keyed state built once and
    copied per message: cheaper than a one-shot HMAC, and it does not release the GIL for
    short messages (a one-shot OpenSSL HMAC through the standard library does, and on the
    event loop every such release lets the audit writer thread take the interpreter away).
    """

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = crypto_hmac.HMAC(key, hashes.SHA256())

    def hexdigest(self, msg: bytes) -> str:
        h = self._base.copy()
        h.update(msg)
        return h.finalize().hex()


class AuditKeys:
    """The audit keys of one root key: record HMAC, field HMAC, checkpoint signing."""

    __slots__ = ("_field", "_record", "public_raw", "record_key", "signer")

    def __init__(self, record_key: bytes, field_key: bytes, signer: Ed25519PrivateKey) -> None:
        self.record_key = record_key
        self.signer = signer
        self.public_raw = signer.public_key().public_bytes(serialization.Encoding.Raw,
                                                           serialization.PublicFormat.Raw)
        self._record = _Hmac(record_key)
        self._field = _Hmac(field_key)

    def __repr__(self) -> str:
        return "AuditKeys(<hidden>)"

    @classmethod
    def derive(cls, derive: Callable[[bytes, int], bytes]) -> AuditKeys:
        """From ``derive(info, length)`` (custody's HKDF of the root key)."""
        return cls(record_key=derive(INFO_HMAC, 32), field_key=derive(INFO_FIELD, 32),
                   signer=Ed25519PrivateKey.from_private_bytes(derive(INFO_SIGN, 32)))

    def field(self, value: str) -> str:
        """``hmac-sha256:<hex>`` of a sensitive value (token, context value), as Vault's
        audit hashes request fields; the same value always gives the same HMAC, so an
        auditor can search for it (``POST /v1/audit/hash``)."""
        return FIELD_PREFIX + self._field.hexdigest(value.encode())

    def record_hmac(self, canonical: bytes) -> str:
        """Hex HMAC-SHA256 of a record's canonical bytes under the record key."""
        return self._record.hexdigest(canonical)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    def public_pem(self) -> str:
        return self.signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


_encoder = msgspec.json.Encoder()


def encode_line(record: AuditRecord, keys: AuditKeys | None, *, sign: bool = False) -> bytes:
    """The record's JSON line (no newline): canonical bytes, then ``hmac`` when ``keys`` are
    given, then ``signature`` when ``sign`` (checkpoints). ``record`` must hold neither
    authenticator."""
    line = _encoder.encode(record)
    if keys is None:
        return line
    tail = b',"hmac":"' + keys.record_hmac(line).encode() + b'"'
    if sign:
        signature = base64.b64encode(keys.signer.sign(line))
        tail += b',"signature":"' + signature + b'"'
    return line[:-1] + tail + b"}"


class ChainHead(NamedTuple):
    """The last record of a chain: ``seq`` (0 when empty) and the hash of its line;
    ``checkpoint`` is the seq of the last checkpoint (None if none yet)."""

    chain: str
    seq: int
    hash: str
    checkpoint: int | None = None


class Chain:
    """The state of one chain; the caller serialises :meth:`advance` (the Auditor's lock)."""

    __slots__ = ("checkpoint", "id", "prev", "seq")

    def __init__(self, chain_id: str, seq: int = 0, prev: str = ZERO_HASH,
                 checkpoint: int | None = None) -> None:
        self.id = chain_id
        self.seq = seq                # of the last record; 0 before the first
        self.prev = prev              # hash of the last record's line
        self.checkpoint = checkpoint  # seq of the last checkpoint

    def advance(self, seq: int, line: bytes, *, checkpoint: bool = False) -> None:
        self.seq = seq
        self.prev = line_hash(line)
        if checkpoint:
            self.checkpoint = seq

    def head(self) -> ChainHead:
        return ChainHead(self.id, self.seq, self.prev, self.checkpoint)
