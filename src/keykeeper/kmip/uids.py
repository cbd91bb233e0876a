"""KMIP Unique Identifiers of keykeeper's keys (issue 5 §3: one key store).

A KMIP managed object is one key version: ``{key_id}/{version}`` (a symmetric key, a
private key, an HMAC key), and ``{key_id}/{version}/public`` for the public key of an
asymmetric key version. Re-Key makes version n+1, a new object whose Replaced Object link
names version n (and version n's Replacement Object link names n+1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ObjectId", "parse_uid"]

_UID = re.compile(r"(k-[0-9a-f]{32})/([1-9][0-9]{0,8})(/public)?")


@dataclass(frozen=True, slots=True)
class ObjectId:
    key_id: str
    version: int
    public: bool = False

    def __str__(self) -> str:
        return f"{self.key_id}/{self.version}" + ("/public" if self.public else "")


def parse_uid(text: str) -> ObjectId | None:
    """The object a Unique Identifier names, or None when it is not one of ours (the
    caller answers Item_Not_Found)."""
    m = _UID.fullmatch(text)
    if m is None:
        return None
    return ObjectId(m.group(1), int(m.group(2)), m.group(3) is not None)
