"""The small value types and item checks of the cryptographic operations
(service/operations.py): encrypt batch items, results, data keys, size limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pybase64 import b64encode_as_string

from keykeeper.crypto import KeyHandle
from keykeeper.domain.keys import Key
from keykeeper.domain.states import ERASED
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound
from keykeeper.service.context import RequestContext

__all__ = ["DATA_KEY_SPECS", "MAX_CONTEXT_PAIRS", "MAX_FALLBACK_VERSIONS", "MAX_PLAINTEXT",
           "BatchItem", "DataKey", "Encrypted", "Sealer", "check_context", "fallback_versions",
           "item_problem", "verify_any"]

MAX_PLAINTEXT = 64 * 1024
MAX_CONTEXT_PAIRS = 64
DATA_KEY_SPECS = {"AES_256": 32, "AES_128": 16}
# Versions tried after the primary when a signature or MAC tag without key_version does not
# verify under it (bounds the work an invalid signature costs: 16 verifications at most).
MAX_FALLBACK_VERSIONS = 16


class BatchItem(Protocol):
    """One item of an encrypt batch (the REST struct has these attributes)."""

    @property
    def plaintext(self) -> bytes: ...
    @property
    def context(self) -> Mapping[str, str] | None: ...
    @property
    def key_version(self) -> int | None: ...


class Encrypted(NamedTuple):
    ciphertext: str
    key_version: int


class Sealer(NamedTuple):
    handle: KeyHandle
    number: int
    head: str          # "keykeeper:v1:<key id>:<version>:"
    aad_prefix: bytes  # header, then a NUL byte; the canonical context follows

    def encrypted(self, blob: bytes) -> Encrypted:
        return Encrypted(self.head + b64encode_as_string(blob), self.number)


def item_problem(plaintext: bytes, context: Mapping[str, str] | None) -> InvalidArgument | None:
    """Why one plaintext cannot be encrypted (size or context limits), or None."""
    if len(plaintext) > MAX_PLAINTEXT:
        return InvalidArgument(f"plaintext is larger than {MAX_PLAINTEXT} bytes")
    if context and len(context) > MAX_CONTEXT_PAIRS:
        return InvalidArgument(f"context holds at most {MAX_CONTEXT_PAIRS} pairs")
    return None


@dataclass(frozen=True, slots=True)
class DataKey:
    ciphertext: str
    key_version: int
    plaintext: bytes | None

    def __repr__(self) -> str:
        return f"DataKey(key_version={self.key_version}, plaintext=<hidden>)"


def check_context(context: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if context and len(context) > MAX_CONTEXT_PAIRS:
        raise InvalidArgument(f"context holds at most {MAX_CONTEXT_PAIRS} pairs")
    return context


def fallback_versions(key: Key, primary: int) -> list[int]:
    """The versions of ``key`` other than ``primary`` that still hold material, newest
    first, at most :data:`MAX_FALLBACK_VERSIONS` (the caller still checks each one's use)."""
    numbers = sorted((v.version for v in key.versions
                      if v.version != primary and v.state not in ERASED), reverse=True)
    return numbers[:MAX_FALLBACK_VERSIONS]


def verify_any(ctx: RequestContext, key: Key, key_version: int | None,
               check: Callable[[KeyHandle], bool],
               handle_for: Callable[[int | None], KeyHandle]) -> tuple[bool, int]:
    """``(valid, version)`` of a signature or MAC tag; ``handle_for(n)`` is version n's
    handle after its use check (None: the primary), recording n in ``ctx``.

    With ``key_version``: that version's answer. Without (a signature or tag names no
    version): the primary's; if invalid, :func:`fallback_versions` in turn, skipping those
    the use check refuses (FailedPrecondition, NotFound): the first that verifies answers
    valid with its number (``ctx`` then records it, and ``allow_compromised`` if it was
    needed), else invalid with the primary's. A refusal of the primary is raised."""
    ok = check(handle_for(key_version))
    primary = ctx.key_version
    assert primary is not None
    if ok or key_version is not None:
        return ok, primary
    flagged = ctx.allow_compromised
    for number in fallback_versions(key, primary):
        ctx.allow_compromised = flagged
        try:
            handle = handle_for(number)
        except (FailedPrecondition, NotFound):
            continue
        if check(handle):
            return True, number
    ctx.key_version, ctx.allow_compromised = primary, flagged
    return False, primary
