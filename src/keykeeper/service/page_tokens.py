"""Opaque page tokens for lists filtered by the caller's grants.

The store's keyset token names the last row read, which may be a key the caller must
not learn of; so the caller only ever sees it sealed (AES-256-GCM under a root-derived
key, bound to the principal as associated data): it can neither read nor forge one, nor
use another principal's.
"""

from __future__ import annotations

import base64

from keykeeper.crypto.aead import aead_open, aead_seal
from keykeeper.custody.keyring import Custody
from keykeeper.errors import DecryptionFailed, InvalidArgument

__all__ = ["open_page_token", "seal_page_token"]

_INFO = b"keykeeper/page-token/v1"
MAX_TOKEN = 2048


def seal_page_token(custody: Custody, principal: str, token: str) -> str:
    """The caller's form of a store token (URL-safe base64, no padding)."""
    blob = aead_seal(custody.derive(_INFO), token.encode(), principal.encode())
    return base64.urlsafe_b64encode(blob).decode().rstrip("=")


def open_page_token(custody: Custody, principal: str, token: str) -> str:
    """The store token inside a caller's token; InvalidArgument if it is not one this
    server sealed for ``principal``. Raises Sealed while sealed."""
    try:
        if len(token) > MAX_TOKEN:
            raise ValueError
        blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return aead_open(custody.derive(_INFO), blob, principal.encode()).decode()
    except (ValueError, DecryptionFailed, UnicodeDecodeError):
        raise InvalidArgument("invalid page_token: pass the next_page_token of the previous "
                              "page unchanged") from None
