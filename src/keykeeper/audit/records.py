"""Audit records: one per request (two for a mutating one), success or failure.

A record holds who, what, which key and version, the outcome and where the request
came from, plus its place in the hash chain (``chain``, ``seq``, ``prev``) and its
authenticators (``hmac``; ``signature`` on checkpoints). It never holds plaintext,
key material, passphrases or tokens: the fields are fixed here, and the two sensitive
request fields that are recorded -- the bearer token and the encryption-context values --
are written only as keyed HMACs (``hmac-sha256:<hex>``), as Vault's audit devices do.

The exact bytes of each JSON line are what the chain hashes and the HMAC and signature
authenticate; docs/audit-format.md describes every field and the verification procedure.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "ALERT",
    "CHECKPOINT",
    "SEGMENT",
    "AuditRecord",
]

CHECKPOINT = "audit.checkpoint"   # signs the chain head (Ed25519)
SEGMENT = "audit.segment"         # first record of a chain that could not continue another
ALERT = "audit.alert"             # the audit trail itself noticed trouble (file deleted, ...)


class AuditRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    chain: str                # chain id: node id, plus ".N" for worker slot N
    seq: int                  # 1, 2, 3, ... per chain, no gaps
    prev: str                 # hex SHA-256 of the previous record's JSON line (64 zeros first)
    time: str                 # RFC 3339 UTC, microseconds
    operation: str            # e.g. "encrypt", "key.create", "sys.unseal", "audit.checkpoint"
    outcome: str              # "success" | "error" | "pending" (approval required)
    request_id: str | None = None
    interface: str | None = None      # "rest" (later "kmip")
    phase: str | None = None          # "request" (before acting) | "response"; mutating only
    principal: str | None = None
    source: str | None = None         # client address
    token_hmac: str | None = None     # hmac-sha256:<hex> of the bearer token
    error_code: str | None = None
    namespace: str | None = None
    key_id: str | None = None
    key_version: int | None = None
    items: int | None = None          # batch size, for batch operations
    failed_items: int | None = None   # items that failed inside a successful batch
    approval_id: str | None = None    # dual control: the approval request created or executed
    execution: str | None = None      # the vote that ran it: "executed" | "failed:<code>"
    on_behalf_of: str | None = None   # ... and the requester, as whom the request ran
    context: dict[str, str] | None = None  # encryption context: name -> hmac-sha256:<hex>
    detail: str | None = None         # audit.* records: what happened
    reason: str | None = None         # checkpoints: periodic|records|seal|rotate|shutdown|
                                      # requested (POST /v1/audit/checkpoint)
    public_key: str | None = None     # checkpoints: the Ed25519 public key, raw, base64
    allow_compromised: bool | None = None  # true: a compromised key or version was used
    destination_key_id: str | None = None  # rewrap into another key: that key's id
                                           # for recovery (decrypt/verify), by request
    wrapping_key_fingerprint: str | None = None  # key import/export: SHA-256 hex of the
                                                 # wrapping key (never material)
    # Authenticators: always last, so the canonical bytes are the line without them.
    hmac: str | None = None           # hex HMAC-SHA256 (absent while sealed)
    signature: str | None = None      # checkpoints: base64 Ed25519 signature
