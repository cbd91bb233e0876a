"""Envelope encryption of files and streams with a fresh data key per stream.

:func:`encrypt_stream` asks the server for a new AES-256 data key
(``POST /v1/keys/{key}/data-key``), encrypts the input locally in
AES-256-GCM chunks (:mod:`keykeeper.client.framing`, spec in
docs/file-format.md) and stores the wrapped data key in the header.
:func:`decrypt_stream` reads the header, unwraps the data key with
``POST /v1/keys/{key_id}/decrypt`` (the key id comes from the wrapped key) and
decrypts chunk by chunk. Memory use is constant: about two chunks.

Only the data key travels to and from the server; the file's contents never do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO, Protocol

from keykeeper.client.framing import DEFAULT_CHUNK_SIZE, Header, decrypt_body, encrypt_body
from keykeeper.client.framing import read_header as _read_header
from keykeeper.client.models import DataKey, DecryptResult
from keykeeper.errors import DecryptionFailed, Internal

__all__ = ["decrypt_stream", "encrypt_stream", "key_id_of"]


class _KeyService(Protocol):
    def generate_data_key(
        self,
        key: str,
        *,
        key_spec: str = ...,
        context: Mapping[str, str] | None = ...,
        include_plaintext: bool = ...,
    ) -> DataKey: ...

    def decrypt(
        self, key: str, ciphertext: str, *, context: Mapping[str, str] | None = ...
    ) -> DecryptResult: ...


def key_id_of(wrapped_key: str) -> str:
    """The key id inside a ``keykeeper:v1:<key_id>:<version>:<base64>`` ciphertext.

    Raises DecryptionFailed if the string does not have that shape.
    """
    parts = wrapped_key.split(":")
    if len(parts) != 5 or parts[0] != "keykeeper" or not parts[1] or not parts[2]:
        raise DecryptionFailed()
    return parts[2]


def encrypt_stream(
    client: _KeyService,
    key: str,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    context: Mapping[str, str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Encrypt ``src`` into ``dst`` (binary file objects) under a new data key from ``key``.

    ``context`` is bound to the wrapped data key and must be given again to
    decrypt. ``chunk_size`` is plaintext bytes per chunk (1..16 MiB). Returns the
    number of plaintext bytes encrypted. Raises the SDK's errors for the
    data-key request (NotFound, FailedPrecondition, ...), InvalidArgument for a
    bad chunk size. On failure ``dst`` holds a partial, useless envelope.
    """
    Header(chunk_size=chunk_size, wrapped_key="-")  # validate before calling the server
    data_key = client.generate_data_key(key, key_spec="AES_256", context=context)
    if data_key.plaintext is None or len(data_key.plaintext) != 32:
        raise Internal("the server returned no 32-byte data key")
    header = Header(chunk_size=chunk_size, wrapped_key=data_key.ciphertext)
    return encrypt_body(data_key.plaintext, header, src, dst)


def decrypt_stream(
    client: _KeyService,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    context: Mapping[str, str] | None = None,
) -> int:
    """Decrypt an envelope from ``src`` into ``dst``; returns the plaintext bytes written.

    Raises DecryptionFailed for a malformed, truncated, reordered or tampered
    envelope, or a wrong ``context``. Errors unrelated to integrity (NotFound,
    PermissionDenied, ConnectionFailed, ...) propagate as themselves. Plaintext
    is written chunk by chunk as each chunk verifies, so on any error the caller
    MUST discard what was already written to ``dst``.
    """
    header, header_bytes = _read_header(src)
    key_id = key_id_of(header.wrapped_key)
    data_key = client.decrypt(key_id, header.wrapped_key, context=context).plaintext
    return decrypt_body(data_key, header, header_bytes, src, dst)
