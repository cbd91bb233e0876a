"""Shamir seal: the root key wrapped under an unseal key split into N shares, M to unseal.

As Vault's shamir seal: a random 32-byte *unseal key* wraps the root key with AES-256-GCM
(associated data ``keykeeper/seal/shamir/v1``), and is split over GF(2^8)
(custody/shamir.py) into ``secret_shares`` shares with threshold ``secret_threshold``
(defaults 5 and 3). Shares travel as standard base64 of Vault's layout (32 y-bytes and
one x-byte: 33 bytes); they are shown once and never stored or logged.

:class:`ShareCollector` takes shares one at a time, from several people over several
requests, until the threshold; a wrong combination is one error and resets it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import threading
from dataclasses import dataclass

from keykeeper.crypto.aead import aead_open, aead_seal
from keykeeper.custody.shamir import MAX_SHARES, combine, split
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument

__all__ = ["DEFAULT_SHARES", "DEFAULT_THRESHOLD", "Progress", "SealedShamir",
           "ShareCollector", "check_shares", "decode_share", "open_with_key",
           "seal_with_shares"]

_AAD = b"keykeeper/seal/shamir/v1"
DEFAULT_SHARES = 5
DEFAULT_THRESHOLD = 3
SHARE_SIZE = 33  # 32-byte unseal key + x-coordinate


def check_shares(shares: int, threshold: int) -> None:
    """InvalidArgument unless ``2 <= threshold <= shares <= 255`` (or both 1)."""
    if not (1 <= threshold <= shares <= MAX_SHARES) or (threshold == 1 and shares > 1):
        raise InvalidArgument(
            f"secret_shares must be 1..{MAX_SHARES} and secret_threshold 2..secret_shares "
            f"(or both 1), got {shares} shares with threshold {threshold}")


@dataclass(frozen=True, slots=True)
class SealedShamir:
    """What the store keeps: the wrapped root key and the share counts (no share)."""

    wrapped_root_key: bytes
    shares: int
    threshold: int

    def to_json(self) -> dict[str, object]:
        return {"wrapped_root_key": base64.b64encode(self.wrapped_root_key).decode(),
                "shares": self.shares, "threshold": self.threshold}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SealedShamir:
        return cls(wrapped_root_key=base64.b64decode(str(data["wrapped_root_key"])),
                   shares=int(str(data["shares"])), threshold=int(str(data["threshold"])))


def seal_with_shares(root_key: bytes, shares: int = DEFAULT_SHARES,
                     threshold: int = DEFAULT_THRESHOLD) -> tuple[SealedShamir, list[str]]:
    """Wrap ``root_key`` (32 bytes) under a fresh unseal key and split that key; returns
    the record to store and the ``shares`` base64 shares (show once, never keep).
    InvalidArgument for bad counts."""
    check_shares(shares, threshold)
    unseal_key = bytearray(os.urandom(32))
    try:
        sealed = SealedShamir(aead_seal(bytes(unseal_key), root_key, _AAD), shares, threshold)
        parts = split(bytes(unseal_key), shares, threshold)
    finally:
        _zero(unseal_key)
    return sealed, [base64.b64encode(p).decode() for p in parts]


def open_with_key(sealed: SealedShamir, unseal_key: bytes) -> bytes:
    """The 32-byte root key; InvalidArgument when ``unseal_key`` is not the right one."""
    try:
        return aead_open(unseal_key, sealed.wrapped_root_key, _AAD)
    except DecryptionFailed:
        raise InvalidArgument("the shares do not combine to the unseal key (a share is "
                              "wrong or from another key store)") from None


def decode_share(text: str) -> bytearray:
    """A base64 share as bytes; InvalidArgument (never echoing it) when malformed."""
    try:
        raw = bytearray(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        raise InvalidArgument("the share is not valid base64") from None
    if len(raw) != SHARE_SIZE or raw[-1] == 0:
        raise InvalidArgument(f"the share is malformed (a share is {SHARE_SIZE} bytes, "
                              "base64)")
    return raw


def _zero(buf: bytearray) -> None:
    for i in range(len(buf)):
        buf[i] = 0


@dataclass(frozen=True, slots=True)
class Progress:
    """Where one share-collecting attempt stands; ``nonce`` names the attempt."""

    progress: int
    threshold: int
    nonce: str


class ShareCollector:
    """Collects shares for one purpose (unseal, rekey, generate-root), in memory only.

    :meth:`add` returns the combined secret once ``threshold`` distinct shares are in
    (the caller checks it, e.g. by an authenticated unwrap); until then None. The shares
    are zeroed and forgotten at the threshold, at :meth:`reset` and on any wrong
    combination. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shares: list[bytearray] = []
        self._nonce = secrets.token_hex(16)

    def progress(self, threshold: int) -> Progress:
        with self._lock:
            return Progress(len(self._shares), threshold, self._nonce)

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        for s in self._shares:
            _zero(s)
        self._shares = []
        self._nonce = secrets.token_hex(16)

    def add(self, share: str, threshold: int, nonce: str | None = None) -> bytearray | None:
        """Add one base64 share. InvalidArgument for a malformed or repeated share (the
        progress is kept); FailedPrecondition when ``nonce`` is not the current attempt's
        (completed, reset, or another attempt in progress: the message says which).
        Returns the combined secret (zero it after use) at the threshold, else None."""
        raw = decode_share(share)
        with self._lock:
            # Compared as bytes: compare_digest refuses non-ASCII str (a TypeError, not a
            # stale nonce).
            if nonce is not None and not hmac.compare_digest(
                    nonce.encode("utf-8", "replace"), self._nonce.encode()):
                _zero(raw)
                if self._shares:
                    raise FailedPrecondition(
                        f"the nonce does not match the attempt in progress ({len(self._shares)}"
                        f" of {threshold} shares given; its nonce is in the status): give "
                        "the share with that nonce, or reset the attempt")
                raise FailedPrecondition("the nonce names an attempt that was completed or "
                                         "reset (none is in progress); give the share "
                                         "without it, or with the nonce in the status")
            for s in self._shares:
                if s[-1] == raw[-1]:
                    same = hmac.compare_digest(bytes(s), bytes(raw))
                    _zero(raw)
                    raise InvalidArgument("this share was already given" if same else
                                          "a share with the same x-coordinate was already "
                                          "given (the share is malformed)")
            self._shares.append(raw)
            if len(self._shares) < threshold:
                return None
            try:
                return bytearray(combine([bytes(s) for s in self._shares]))
            finally:
                self._clear()
