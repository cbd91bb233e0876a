"""Raw cryptographic modes for KMIP Encrypt / Decrypt / MAC (KMIP 2.1 §6.1.16, §6.1.11,
§6.1.29): pure functions over pyca/cryptography, bytes in, bytes out.

keykeeper's own operations seal in one self-describing AEAD format (crypto/aead.py); KMIP
clients instead name the mode, the padding and the IV themselves. These functions run
those modes on a key's raw material, which :func:`raw_key` takes from a loaded handle:

* AES (16 or 32 byte keys): ECB and CBC (padding ``NONE`` or ``PKCS5``; IV 16 bytes),
  CTR (16-byte initial counter block), GCM (IV 8..128 bytes, 12 recommended; tag 4, 8,
  12..16 bytes, NIST SP 800-38D §5.2.1.2), CCM (nonce 7..13 bytes; tag 4..16, even);
* ChaCha20 stream (RFC 8439 §2.4; an 8-byte nonce takes the original 64-bit counter
  layout, a 12-byte one the RFC's 32-bit counter) and ChaCha20-Poly1305 (RFC 8439 §2.8;
  12-byte nonce, tag 12..16 bytes; a shorter tag is the full tag's prefix);
* HMAC with SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 and SHA3-* (FIPS 198-1).

Every decryption failure (bad padding, bad tag, wrong length) raises the one uniform
:class:`~keykeeper.errors.DecryptionFailed`; bad arguments raise InvalidArgument before
any key is used. Nothing here chooses a nonce: the caller gives it (or draws it with
``os.urandom``, see :func:`random_iv`).
"""

from __future__ import annotations

import hmac as _hmac
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as _pyca_hmac
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, ChaCha20Poly1305

from keykeeper.crypto.base import KeyHandle, PublicKeyHandle
from keykeeper.crypto.public_only import PublicOnlyKeyHandle
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument

__all__ = [
    "AES_MODES",
    "HASHES",
    "BadTagLength",
    "RawKey",
    "RawModeNotSupported",
    "aes_decrypt",
    "aes_encrypt",
    "aes_key",
    "block_mode",
    "chacha20",
    "chacha20_poly1305_decrypt",
    "chacha20_poly1305_encrypt",
    "chacha_block",
    "chacha_key",
    "check_iv",
    "check_padding",
    "check_tag_length",
    "hash_for",
    "hmac_tag",
    "hmac_verify",
    "random_iv",
    "raw_key",
]

RawKey = (bytes | rsa.RSAPrivateKey | rsa.RSAPublicKey
          | ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
"""Raw material: secret key bytes, or a pyca RSA / EC key object."""

HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "SHA1": hashes.SHA1,
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
    "SHA3_224": hashes.SHA3_224,
    "SHA3_256": hashes.SHA3_256,
    "SHA3_384": hashes.SHA3_384,
    "SHA3_512": hashes.SHA3_512,
}
"""Hash names this module accepts (MD5, RIPEMD-160 and the like are refused)."""

AES_MODES: Final = ("ECB", "CBC", "CTR", "GCM", "CCM")
BLOCK: Final = 16
GCM_TAG_LENGTHS: Final = (4, 8, 12, 13, 14, 15, 16)
CCM_TAG_LENGTHS: Final = (4, 6, 8, 10, 12, 14, 16)
CHACHA_TAG_LENGTHS: Final = (12, 13, 14, 15, 16)
MAX_DATA: Final = 64 * 1024 * 1024


class BadTagLength(InvalidArgument):
    """A Tag Length the mode does not allow. KMIP answers ``General_Failure``, as the
    KMIP 2.1 profile tests CS-BC-M-GCM-1 and CS-BC-M-CHACHA20POLY1305-1 expect."""

    kmip_reason = "General_Failure"


class RawModeNotSupported(FailedPrecondition):
    """A raw mode this key cannot run (an HSM-protected key; PKCS#1 v1.5 decryption):
    KMIP ``Operation_Not_Supported``."""

    kmip_reason = "Operation_Not_Supported"


def hash_for(name: str) -> hashes.HashAlgorithm:
    """The pyca hash for ``name`` (a key of :data:`HASHES`); InvalidArgument otherwise."""
    cls = HASHES.get(name)
    if cls is None:
        raise InvalidArgument(f"hashing algorithm {name[:32]} is not supported")
    return cls()


def raw_key(handle: KeyHandle | PublicKeyHandle) -> RawKey:
    """The raw material inside a loaded software handle: secret bytes, or the pyca private
    key (a public-only handle gives its public key). The material never leaves the
    process: callers pass it straight to this module's functions (service/raw_crypto.py).
    RawModeNotSupported (KMIP Operation_Not_Supported) for a handle without material here:
    an HSM-protected key, whose token is asked for keykeeper's own operations only."""
    if isinstance(handle, PublicOnlyKeyHandle):  # a public key imported alone
        handle = handle._public
    inner = getattr(handle, "_key", None)  # HSM handles hold none: refused below
    if isinstance(inner, bytes | rsa.RSAPrivateKey | rsa.RSAPublicKey
                  | ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return inner
    raise RawModeNotSupported("KMIP raw cryptographic modes are not supported for this key "
                              "(HSM-protected keys answer keykeeper's own operations only)")


def random_iv(length: int) -> bytes:
    """``length`` bytes from ``os.urandom``: the IV of a KMIP Random IV request."""
    if not 1 <= length <= 256:
        raise InvalidArgument("IV length must be 1..256 bytes")
    return os.urandom(length)


def _bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name} must be bytes")
    if len(value) > MAX_DATA:
        raise InvalidArgument(f"{name} is longer than {MAX_DATA} bytes")
    return bytes(value)


def aes_key(key: RawKey) -> bytes:
    if not isinstance(key, bytes) or len(key) not in (16, 24, 32):
        raise InvalidArgument("AES needs a 16, 24 or 32 byte key")
    return key


def check_iv(mode: str, iv: bytes | None) -> bytes:
    if mode == "ECB":
        if iv:
            raise InvalidArgument("ECB takes no IV")
        return b""
    if iv is None:
        raise InvalidArgument(f"{mode} needs an IV/Counter/Nonce")
    if mode in ("CBC", "CTR") and len(iv) != BLOCK:
        raise InvalidArgument(f"{mode} needs a 16-byte IV")
    if mode == "GCM" and not 8 <= len(iv) <= 128:
        raise InvalidArgument("GCM needs an IV of 8..128 bytes (12 recommended)")
    if mode == "CCM" and not 7 <= len(iv) <= 13:
        raise InvalidArgument("CCM needs a nonce of 7..13 bytes")
    return iv


def check_tag_length(mode: str, tag_length: int | None) -> int:
    allowed = {"GCM": GCM_TAG_LENGTHS, "CCM": CCM_TAG_LENGTHS}[mode]
    n = 16 if tag_length is None else tag_length
    if n not in allowed:
        raise BadTagLength(f"{mode} tag length must be one of {list(allowed)} bytes")
    return n


def check_padding(padding_name: str | None, mode: str) -> bool:
    name = padding_name or "NONE"
    if name not in ("NONE", "PKCS5"):
        raise InvalidArgument(f"padding {name[:32]} is not supported with AES-{mode}")
    if name == "PKCS5" and mode not in ("ECB", "CBC"):
        raise InvalidArgument(f"AES-{mode} takes no padding")
    return name == "PKCS5"


def block_mode(mode: str, iv: bytes) -> modes.ECB | modes.CBC | modes.CTR:
    if mode == "ECB":
        return modes.ECB()  # noqa: S305 -- KMIP clients ask for ECB by name (CS-BC-M-1)
    if mode == "CBC":
        return modes.CBC(iv)
    return modes.CTR(iv)


def aes_encrypt(key: RawKey, mode: str, data: bytes, *, iv: bytes | None = None,
                padding_name: str | None = None, aad: bytes = b"",
                tag_length: int | None = None) -> tuple[bytes, bytes | None]:
    """AES-``mode`` encryption of ``data``: ``(ciphertext, tag)`` (tag None outside GCM
    and CCM). ``padding_name`` ``NONE`` (default) or ``PKCS5`` (ECB and CBC); without
    padding, ECB and CBC need whole 16-byte blocks. InvalidArgument for any bad argument."""
    k = aes_key(key)
    data = _bytes("data", data)
    if mode not in AES_MODES:
        raise InvalidArgument(f"block cipher mode {mode[:32]} is not supported with AES")
    iv = check_iv(mode, iv)
    if mode in ("GCM", "CCM"):
        check_padding(padding_name, mode)
        n = check_tag_length(mode, tag_length)
        aad = _bytes("additional data", aad)
        if mode == "CCM":
            try:
                out = AESCCM(k, tag_length=n).encrypt(iv, data, aad or None)
            except ValueError as exc:
                raise InvalidArgument("data too long for this CCM nonce") from exc
            return out[:-n], out[-n:]
        gcm = Cipher(algorithms.AES(k), modes.GCM(iv)).encryptor()
        if aad:
            gcm.authenticate_additional_data(aad)
        ct = gcm.update(data) + gcm.finalize()
        return ct, gcm.tag[:n]
    if aad:
        raise InvalidArgument(f"AES-{mode} takes no additional authenticated data")
    if check_padding(padding_name, mode):
        p = padding.PKCS7(128).padder()
        data = p.update(data) + p.finalize()
    elif mode != "CTR" and len(data) % BLOCK:
        raise InvalidArgument(f"AES-{mode} without padding needs a multiple of 16 bytes")
    enc = Cipher(algorithms.AES(k), block_mode(mode, iv)).encryptor()
    return enc.update(data) + enc.finalize(), None


def aes_decrypt(key: RawKey, mode: str, data: bytes, *, iv: bytes | None = None,
                padding_name: str | None = None, aad: bytes = b"",
                tag: bytes | None = None) -> bytes:
    """Inverse of :func:`aes_encrypt`; GCM and CCM need ``tag`` (its length is the tag
    length). InvalidArgument for bad arguments (mode, IV size, missing tag); every failure
    of the data itself (bad padding, wrong length, bad tag) raises DecryptionFailed."""
    k = aes_key(key)
    data = _bytes("data", data)
    if mode not in AES_MODES:
        raise InvalidArgument(f"block cipher mode {mode[:32]} is not supported with AES")
    iv = check_iv(mode, iv)
    if mode in ("GCM", "CCM"):
        check_padding(padding_name, mode)
        if tag is None:
            raise InvalidArgument(f"AES-{mode} decryption needs the authentication tag")
        tag = _bytes("tag", tag)
        check_tag_length(mode, len(tag))
        aad = _bytes("additional data", aad)
        try:
            if mode == "CCM":
                return AESCCM(k, tag_length=len(tag)).decrypt(iv, data + tag, aad or None)
            gcm = Cipher(algorithms.AES(k), modes.GCM(iv, tag, min_tag_length=4)).decryptor()
            if aad:
                gcm.authenticate_additional_data(aad)
            return gcm.update(data) + gcm.finalize()
        except (InvalidTag, ValueError):
            raise DecryptionFailed() from None
    padded = check_padding(padding_name, mode)
    if mode != "CTR" and len(data) % BLOCK:
        raise DecryptionFailed()
    dec = Cipher(algorithms.AES(k), block_mode(mode, iv)).decryptor()
    out = dec.update(data) + dec.finalize()
    if not padded:
        return out
    try:
        u = padding.PKCS7(128).unpadder()
        return u.update(out) + u.finalize()
    except ValueError:
        raise DecryptionFailed() from None


def chacha_key(key: RawKey) -> bytes:
    if not isinstance(key, bytes) or len(key) != 32:
        raise InvalidArgument("ChaCha20 needs a 32-byte key")
    return key


def chacha_block(nonce: bytes, initial_counter: int = 0) -> bytes:
    """The 16-byte initial block pyca's ChaCha20 takes: counter and nonce, little-endian
    (see :func:`chacha20` for the nonce sizes). InvalidArgument when they do not fit."""
    if initial_counter < 0:
        raise InvalidArgument("initial counter must not be negative")
    if len(nonce) == 8 and initial_counter < 2**64:
        return initial_counter.to_bytes(8, "little") + nonce
    if len(nonce) == 12 and initial_counter < 2**32:
        return initial_counter.to_bytes(4, "little") + nonce
    if len(nonce) == 16 and initial_counter == 0:
        return nonce
    raise InvalidArgument("ChaCha20 needs an 8, 12 or 16 byte nonce and a counter that "
                          "fits it")


def chacha20(key: RawKey, nonce: bytes, data: bytes, initial_counter: int = 0) -> bytes:
    """The ChaCha20 stream XORed over ``data`` (encryption and decryption alike).

    ``nonce``: 8 bytes (64-bit block counter, the original layout) or 12 bytes (RFC 8439
    §2.3: 32-bit counter), or 16 bytes (counter and nonce as one block, little-endian, as
    pyca takes it; ``initial_counter`` must then be 0)."""
    k = chacha_key(key)
    nonce = _bytes("nonce", nonce)
    data = _bytes("data", data)
    enc = Cipher(algorithms.ChaCha20(k, chacha_block(nonce, initial_counter)),
                 mode=None).encryptor()
    return enc.update(data) + enc.finalize()


def _chacha_args(key: RawKey, nonce: bytes, aad: bytes) -> tuple[bytes, bytes, bytes]:
    k = chacha_key(key)
    nonce = _bytes("nonce", nonce)
    if len(nonce) != 12:
        raise InvalidArgument("ChaCha20-Poly1305 needs a 12-byte nonce")
    return k, nonce, _bytes("additional data", aad)


def chacha20_poly1305_encrypt(key: RawKey, nonce: bytes, data: bytes, aad: bytes = b"",
                              tag_length: int | None = None) -> tuple[bytes, bytes]:
    """ChaCha20-Poly1305 (RFC 8439 §2.8): ``(ciphertext, tag)``; a ``tag_length`` below 16
    gives the full tag's prefix. InvalidArgument for bad arguments."""
    k, nonce, aad = _chacha_args(key, nonce, aad)
    n = 16 if tag_length is None else tag_length
    if n not in CHACHA_TAG_LENGTHS:
        raise BadTagLength(f"ChaCha20-Poly1305 tag length must be 12..16 bytes, not {n}")
    out = ChaCha20Poly1305(k).encrypt(nonce, _bytes("data", data), aad)
    return out[:-16], out[-16:][:n]


def chacha20_poly1305_decrypt(key: RawKey, nonce: bytes, data: bytes, tag: bytes,
                              aad: bytes = b"") -> bytes:
    """Open a ChaCha20-Poly1305 ciphertext with its (full or 12..15-byte prefix) tag.

    A truncated tag is checked against the recomputed full tag's prefix, in constant time,
    before any plaintext is returned. Any failure raises DecryptionFailed."""
    k, nonce, aad = _chacha_args(key, nonce, aad)
    data = _bytes("data", data)
    tag = _bytes("tag", tag)
    if len(tag) not in CHACHA_TAG_LENGTHS:
        raise DecryptionFailed()
    primitive = ChaCha20Poly1305(k)
    if len(tag) == 16:
        try:
            return primitive.decrypt(nonce, data + tag, aad)
        except InvalidTag:
            raise DecryptionFailed() from None
    plaintext = chacha20(k, nonce, data, initial_counter=1)  # RFC 8439 §2.8: counter 1
    full = primitive.encrypt(nonce, plaintext, aad)[-16:]
    if not _hmac.compare_digest(full[:len(tag)], tag):
        raise DecryptionFailed()
    return plaintext


def hmac_tag(key: RawKey, hash_name: str, data: bytes) -> bytes:
    """HMAC (FIPS 198-1) of ``data`` with ``hash_name``: the full-length tag."""
    if not isinstance(key, bytes) or not key:
        raise InvalidArgument("HMAC needs a secret key")
    h = _pyca_hmac.HMAC(key, hash_for(hash_name))
    h.update(_bytes("data", data))
    return h.finalize()


def hmac_verify(key: RawKey, hash_name: str, data: bytes, tag: bytes) -> bool:
    """True when ``tag`` is the full-length HMAC of ``data`` (constant-time compare); a
    truncated tag is False (keykeeper accepts full-length tags only)."""
    return _hmac.compare_digest(hmac_tag(key, hash_name, data), _bytes("tag", tag))
