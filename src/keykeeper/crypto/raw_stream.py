"""Multi-part (streaming) raw encryption and decryption for KMIP's Init Indicator / Final
Indicator / Correlation Value (KMIP 2.1 §6.1.16, §6.1.11): pyca/cryptography's
incremental contexts.

AES ECB and CBC (padding ``NONE`` or ``PKCS5``), CTR and GCM, and the ChaCha20 stream. A
GCM decryption checks the tag given with the final part; the parts before it are released
unauthenticated, as KMIP's multi-part decryption requires (a caller that cannot accept that
decrypts in one part). ChaCha20-Poly1305, CCM and RSA have no incremental form here:
:class:`~keykeeper.crypto.raw.RawModeNotSupported`.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from keykeeper.crypto import raw
from keykeeper.errors import DecryptionFailed, InvalidArgument

__all__ = ["RawStream", "open_stream"]


class RawStream:
    """One incremental encryption or decryption: :meth:`update` per part, then
    :meth:`finish` with the final part. Holds key-derived state: never logged, never
    pickled (kept in memory by service/raw_crypto.py only)."""

    __slots__ = ("_ctx", "_encrypt", "_mode", "_pad", "_tag_length")

    def __init__(self, ctx: Any, encrypt: bool, mode: str, pad: Any,
                 tag_length: int) -> None:
        self._ctx = ctx
        self._encrypt = encrypt
        self._mode = mode
        self._pad = pad
        self._tag_length = tag_length

    def __repr__(self) -> str:
        return f"<RawStream {self._mode} {'encrypt' if self._encrypt else 'decrypt'}>"

    def __reduce__(self) -> Any:
        raise TypeError("RawStream objects cannot be pickled")

    def update(self, data: bytes) -> bytes:
        """The output for one more part (block modes may hold back up to a block)."""
        if self._encrypt:
            if self._pad is not None:
                data = self._pad.update(data)
            return bytes(self._ctx.update(data))
        out = bytes(self._ctx.update(data))
        if self._pad is not None:
            try:
                out = self._pad.update(out)
            except ValueError:
                raise DecryptionFailed() from None
        return out

    def finish(self, data: bytes, tag: bytes | None = None) -> tuple[bytes, bytes | None]:
        """The final part's output and, for GCM encryption, the tag (GCM decryption checks
        ``tag`` here: DecryptionFailed, uniform, for a wrong one or bad padding)."""
        if self._encrypt:
            if self._pad is not None:
                data = self._pad.update(data) + self._pad.finalize()
            try:
                out = bytes(self._ctx.update(data)) + bytes(self._ctx.finalize())
            except ValueError as exc:
                raise InvalidArgument(f"AES-{self._mode} without padding needs whole "
                                      "16-byte blocks") from exc
            if self._mode == "GCM":
                return out, bytes(self._ctx.tag)[: self._tag_length]
            return out, None
        try:
            out = bytes(self._ctx.update(data))
            if self._mode == "GCM":
                if tag is None:
                    raise InvalidArgument("the final part of a GCM decryption needs the tag")
                out += bytes(self._ctx.finalize_with_tag(tag))
            else:
                out += bytes(self._ctx.finalize())
            if self._pad is not None:
                out = self._pad.update(out) + self._pad.finalize()
        except InvalidArgument:
            raise
        except (InvalidTag, ValueError):
            raise DecryptionFailed() from None
        return out, None


def open_stream(key: raw.RawKey, algorithm: str, mode: str, *, encrypt: bool,
                iv: bytes | None, padding_name: str | None, aad: bytes = b"",
                tag_length: int | None = None, initial_counter: int = 0) -> RawStream:
    """A stream for ``algorithm`` ``AES`` (``mode`` ECB, CBC, CTR, GCM) or ``CHACHA20``.
    Arguments as :func:`keykeeper.crypto.raw.aes_encrypt` / :func:`~raw.chacha20`;
    InvalidArgument for bad ones, RawModeNotSupported for a mode without a stream form."""
    if algorithm == "CHACHA20":
        if iv is None:
            raise InvalidArgument("ChaCha20 needs a nonce")
        block = raw.chacha_block(iv, initial_counter)
        cipher = Cipher(algorithms.ChaCha20(raw.chacha_key(key), block), mode=None)
        return RawStream(cipher.encryptor() if encrypt else cipher.decryptor(), encrypt,
                         "CHACHA20", None, 0)
    if algorithm != "AES" or mode not in ("ECB", "CBC", "CTR", "GCM"):
        raise raw.RawModeNotSupported(f"multi-part {algorithm} {mode} is not supported (AES "
                                      "ECB, CBC, CTR, GCM and ChaCha20 are)")
    k = raw.aes_key(key)
    iv = raw.check_iv(mode, iv)
    pad: Any = None
    if mode == "GCM":
        raw.check_padding(padding_name, mode)
        n = raw.check_tag_length(mode, tag_length)
        gcm = Cipher(algorithms.AES(k), modes.GCM(iv) if encrypt
                     else modes.GCM(iv, min_tag_length=4))
        ctx: Any = gcm.encryptor() if encrypt else gcm.decryptor()
        if aad:
            ctx.authenticate_additional_data(aad)
        return RawStream(ctx, encrypt, mode, None, n)
    if aad:
        raise InvalidArgument(f"AES-{mode} takes no additional authenticated data")
    if raw.check_padding(padding_name, mode):
        pad = padding.PKCS7(128).padder() if encrypt else padding.PKCS7(128).unpadder()
    aes = Cipher(algorithms.AES(k), raw.block_mode(mode, iv))
    return RawStream(aes.encryptor() if encrypt else aes.decryptor(), encrypt, mode, pad, 0)
