"""The KKENV1 envelope framing: pure code, no HTTP (spec: docs/file-format.md).

A file is a header followed by AES-256-GCM chunks in the STREAM construction
(Hoang, Reyhanitabar, Rogaway, Vizár 2015)::

    header  = "KKENV1" | version u8 = 1 | suite u8 = 1 | chunk_size u32be
              | nonce_prefix 8 bytes | wrapped_len u16be | wrapped_key (ASCII)
    H       = SHA-256(header)
    chunk i = AES-256-GCM(data_key, nonce = nonce_prefix | u32be(i),
                          aad = H | u32be(i) | final_flag u8, plaintext_i)

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last
holds 0..chunk_size and has ``final_flag`` 1; an empty input is one empty final
chunk. So truncation (at a chunk boundary or not), reordering, duplication,
appended data and a changed header all fail authentication.

Both directions run in constant memory (about two chunks). Decryption writes
each chunk's plaintext only after it verifies, but a later chunk can still
fail: on :class:`~keykeeper.errors.DecryptionFailed` the caller must discard
whatever was already written.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keykeeper.errors import DecryptionFailed, InvalidArgument

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "Header",
    "decrypt_body",
    "encrypt_body",
    "read_header",
]

MAGIC = b"KKENV1"
FORMAT_VERSION = 1
SUITE_AES_256_GCM = 1
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
MAX_WRAPPED_LEN = 4096
NONCE_PREFIX_LEN = 8
TAG_LEN = 16
KEY_LEN = 32
MAX_CHUNKS = 2**32

_FIXED = struct.Struct(">6sBBI8sH")  # magic, version, suite, chunk_size, prefix, wrapped_len


@dataclass(frozen=True)
class Header:
    """The envelope header. ``wrapped_key`` is the server ciphertext of the data key."""

    chunk_size: int
    wrapped_key: str
    nonce_prefix: bytes = field(default_factory=lambda: os.urandom(NONCE_PREFIX_LEN))

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise InvalidArgument(f"chunk_size must be 1..{MAX_CHUNK_SIZE} bytes")
        if len(self.nonce_prefix) != NONCE_PREFIX_LEN:
            raise InvalidArgument(f"nonce_prefix must be {NONCE_PREFIX_LEN} bytes")
        raw = self.wrapped_key.encode("ascii", errors="replace")
        if not 1 <= len(raw) <= MAX_WRAPPED_LEN or not self.wrapped_key.isascii():
            raise InvalidArgument(f"wrapped_key must be 1..{MAX_WRAPPED_LEN} ASCII characters")

    def encode(self) -> bytes:
        """The header's exact bytes (22 + len(wrapped_key))."""
        wrapped = self.wrapped_key.encode("ascii")
        fixed = _FIXED.pack(
            MAGIC,
            FORMAT_VERSION,
            SUITE_AES_256_GCM,
            self.chunk_size,
            self.nonce_prefix,
            len(wrapped),
        )
        return fixed + wrapped


def _read_exact(src: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at end of input (tolerates short reads from pipes)."""
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        got = src.read(remaining)
        if not got:
            break
        parts.append(got)
        remaining -= len(got)
    return b"".join(parts)


def read_header(src: BinaryIO) -> tuple[Header, bytes]:
    """Parse the header from ``src``; return it and its exact bytes (to hash).

    Raises DecryptionFailed if the input is not a well-formed KKENV1 header. The
    header is only *authenticated* when the first chunk decrypts.
    """
    fixed = _read_exact(src, _FIXED.size)
    if len(fixed) != _FIXED.size:
        raise DecryptionFailed()
    magic, version, suite, chunk_size, prefix, wrapped_len = _FIXED.unpack(fixed)
    if magic != MAGIC or version != FORMAT_VERSION or suite != SUITE_AES_256_GCM:
        raise DecryptionFailed()
    if not 1 <= wrapped_len <= MAX_WRAPPED_LEN or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise DecryptionFailed()
    wrapped = _read_exact(src, wrapped_len)
    if len(wrapped) != wrapped_len or not wrapped.isascii():
        raise DecryptionFailed()
    header = Header(chunk_size=chunk_size, wrapped_key=wrapped.decode("ascii"), nonce_prefix=prefix)
    return header, fixed + wrapped


def _nonce(prefix: bytes, counter: int) -> bytes:
    return prefix + counter.to_bytes(4, "big")


def _aad(header_hash: bytes, counter: int, final: bool) -> bytes:
    return header_hash + counter.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


def _check_key(data_key: bytes) -> AESGCM:
    if len(data_key) != KEY_LEN:
        raise InvalidArgument("the data key must be 32 bytes (AES-256)")
    return AESGCM(data_key)


def encrypt_body(data_key: bytes, header: Header, src: BinaryIO, dst: BinaryIO) -> int:
    """Write ``header`` then ``src`` encrypted in chunks to ``dst``.

    ``data_key`` is the 32-byte plaintext of ``header.wrapped_key``. Returns the
    number of plaintext bytes read. Reads at most two chunks ahead.
    Raises InvalidArgument for a bad key or more than 2**32 chunks.
    """
    aead = _check_key(data_key)
    header_bytes = header.encode()
    header_hash = hashlib.sha256(header_bytes).digest()
    dst.write(header_bytes)
    size = header.chunk_size
    counter = 0
    total = 0
    current = _read_exact(src, size)
    while True:
        following = _read_exact(src, size) if len(current) == size else b""
        final = not following
        if counter >= MAX_CHUNKS:
            raise InvalidArgument("input too large for one envelope")
        nonce = _nonce(header.nonce_prefix, counter)
        dst.write(aead.encrypt(nonce, current, _aad(header_hash, counter, final)))
        total += len(current)
        if final:
            return total
        current = following
        counter += 1


def decrypt_body(
    data_key: bytes, header: Header, header_bytes: bytes, src: BinaryIO, dst: BinaryIO
) -> int:
    """Decrypt the chunks after a header read by :func:`read_header` into ``dst``.

    Writes each chunk's plaintext only after it verifies. Returns the number of
    plaintext bytes written. Raises DecryptionFailed on any tampering, truncation,
    reordering, duplication, trailing data or a wrong key; the caller must then
    discard what was written.
    """
    if len(data_key) != KEY_LEN:
        raise DecryptionFailed()
    aead = AESGCM(data_key)
    header_hash = hashlib.sha256(header_bytes).digest()
    full = header.chunk_size + TAG_LEN
    counter = 0
    total = 0
    current = _read_exact(src, full)
    while True:
        following = _read_exact(src, full) if len(current) == full else b""
        final = not following
        if counter >= MAX_CHUNKS or len(current) < TAG_LEN:
            raise DecryptionFailed()
        nonce = _nonce(header.nonce_prefix, counter)
        try:
            plain = aead.decrypt(nonce, current, _aad(header_hash, counter, final))
        except InvalidTag:
            raise DecryptionFailed() from None
        dst.write(plain)
        total += len(plain)
        if final:
            return total
        current = following
        counter += 1
