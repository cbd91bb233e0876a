"""Audit records: one per request, success or failure.

A record holds who, what, which key and version, the outcome and where the
request came from. It never holds plaintext, key material, passphrases or tokens:
the fields are fixed here, and nothing else can be written.
"""

from __future__ import annotations

import msgspec

__all__ = ["AuditRecord"]


class AuditRecord(msgspec.Struct, frozen=True, omit_defaults=True):
    time: str                 # RFC 3339 UTC
    request_id: str
    interface: str            # "rest" (later "kmip")
    operation: str            # e.g. "encrypt", "key.create", "sys.unseal"
    principal: str | None
    source: str | None        # client address
    outcome: str              # "success" | "error"
    error_code: str | None = None
    namespace: str | None = None
    key_id: str | None = None
    key_version: int | None = None
    items: int | None = None          # batch size, for batch operations
    failed_items: int | None = None   # items that failed inside a successful batch
