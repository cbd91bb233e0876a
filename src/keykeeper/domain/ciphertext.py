"""The self-describing ciphertext format, version 1 (docs/ciphertext-format.md).

Text form::

    keykeeper:v1:<key_id>:<key_version>:<base64(nonce || ciphertext || tag)>

The header (everything before the last colon) and the caller's context are the
associated data of the AEAD (or the OAEP label for RSA keys), so a ciphertext
moved to another key, version or context fails to decrypt. The body is standard
base64 with padding (pybase64: SIMD base64, as costly per KiB as AES-GCM otherwise).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pybase64 import b64decode, b64encode_as_string

from keykeeper.errors import DecryptionFailed

__all__ = ["PREFIX", "Ciphertext", "associated_data", "canonical_context", "header"]

PREFIX = "keykeeper:v1:"
_PATTERN = re.compile(r"keykeeper:v1:(k-[0-9a-f]{32}):([1-9][0-9]{0,9}):([A-Za-z0-9+/]+={0,2})")


def header(key_id: str, version: int) -> str:
    return f"{PREFIX}{key_id}:{version}"


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """Canonical bytes of an encryption context: JSON with sorted keys, no spaces, UTF-8."""
    if not context:
        return b"{}"
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def associated_data(key_id: str, version: int, context: Mapping[str, str] | None) -> bytes:
    """The AEAD associated data: header, a NUL byte, then the canonical context."""
    return header(key_id, version).encode("ascii") + b"\x00" + canonical_context(context)


@dataclass(frozen=True, slots=True)
class Ciphertext:
    key_id: str
    version: int
    body: bytes

    def encode(self) -> str:
        return f"{header(self.key_id, self.version)}:{b64encode_as_string(self.body)}"

    @classmethod
    def parse(cls, text: str) -> Ciphertext:
        """Parse the text form; any malformation raises the uniform :class:`DecryptionFailed`."""
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise DecryptionFailed()
        try:
            body = b64decode(match.group(3), validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionFailed() from None
        return cls(key_id=match.group(1), version=int(match.group(2)), body=body)
