"""Raw public-key modes for KMIP Encrypt / Decrypt / Sign / Signature Verify (KMIP 2.1
§6.1.16, §6.1.11, §6.1.50, §6.1.51): pure functions over pyca/cryptography.

* RSA encryption: OAEP (RFC 8017 §7.1; hash and MGF1 hash each SHA-1..SHA-512, label =
  KMIP P Source) and RSAES-PKCS1-v1_5 encryption. PKCS#1 v1.5 *decryption* is refused:
  it is a padding oracle (Bleichenbacher 1998, "Marvin" 2023), so :func:`rsa_decrypt`
  answers it with RawModeNotSupported (KMIP Operation_Not_Supported) before touching the key.
* RSA signatures: PSS (RFC 8017 §8.1; MGF1, salt length given or the digest length when
  signing, any when verifying) and PKCS1-v1_5 (§8.2), with SHA-1..SHA-512. SHA-1 verifies
  only: signature generation with SHA-1 is disallowed by NIST SP 800-131A Rev 2 §9 (its
  verification is legacy use), so signing with it is InvalidArgument.
* ECDSA (FIPS 186-5 §6): X9.62 DER signatures, any hash of :data:`raw.HASHES` (SHA-1
  verify only, as above).

A hash OpenSSL does not offer for a padding (SHA-3 in OAEP, say) is InvalidArgument.

``prehashed``: ``data`` is the digest (KMIP Digested Data) and must be the hash's size.
Verification answers False for any bad signature; decryption raises the one uniform
DecryptionFailed.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from keykeeper.crypto.raw import RawKey, RawModeNotSupported, hash_for
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument

__all__ = [
    "ecdsa_sign",
    "ecdsa_verify",
    "rsa_decrypt",
    "rsa_encrypt",
    "rsa_sign",
    "rsa_verify",
]

OAEP: Final = "OAEP"
PKCS1_V1_5: Final = "PKCS1_V1_5"
PSS: Final = "PSS"
MAX_MESSAGE: Final = 64 * 1024 * 1024
NO_SIGNING: Final = frozenset({"SHA1"})  # NIST SP 800-131A Rev 2 §9: verify only


def _bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name} must be bytes")
    if len(value) > MAX_MESSAGE:
        raise InvalidArgument(f"{name} is longer than {MAX_MESSAGE} bytes")
    return bytes(value)


def _rsa_public(key: RawKey) -> rsa.RSAPublicKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return key
    raise InvalidArgument("this operation needs an RSA key")


def _rsa_private(key: RawKey) -> rsa.RSAPrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    raise FailedPrecondition("this operation needs an RSA private key")


def _oaep(hash_name: str, mgf_hash: str | None, label: bytes | None) -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hash_for(mgf_hash or hash_name)),
                        algorithm=hash_for(hash_name), label=label or None)


_OAEP_OFFERED: dict[tuple[str, str], bool] = {}


def _oaep_offered(private: rsa.RSAPrivateKey, pad: padding.OAEP, hash_name: str,
                  mgf_hash: str | None) -> bool:
    """Whether OpenSSL offers OAEP with these hashes (it has no SHA-3 OAEP), told by a
    public operation before any secret one, once per pair of hashes."""
    pair = (hash_name, mgf_hash or hash_name)
    offered = _OAEP_OFFERED.get(pair)
    if offered is None:
        try:
            private.public_key().encrypt(b"", pad)
            offered = True
        except UnsupportedAlgorithm:
            offered = False
        except ValueError:
            offered = True  # the label or key size: decryption decides, uniformly
        _OAEP_OFFERED[pair] = offered
    return offered


def rsa_encrypt(key: RawKey, padding_name: str, data: bytes, *, hash_name: str = "SHA256",
                mgf_hash: str | None = None, label: bytes | None = None) -> bytes:
    """RSA encryption with the public half of ``key``: ``OAEP`` (``hash_name``, MGF1 with
    ``mgf_hash`` or the same hash, ``label``) or ``PKCS1_V1_5``. InvalidArgument for an
    unknown padding, a hash not offered, or data too long for the modulus."""
    public = _rsa_public(key)
    data = _bytes("data", data)
    pad: padding.AsymmetricPadding
    if padding_name == OAEP:
        pad = _oaep(hash_name, mgf_hash, label)
    elif padding_name == PKCS1_V1_5:
        pad = padding.PKCS1v15()
    else:
        raise InvalidArgument(f"padding {padding_name[:32]} is not supported for RSA "
                              "encryption (OAEP or PKCS1_V1_5)")
    try:
        return public.encrypt(data, pad)
    except UnsupportedAlgorithm:
        raise _unsupported(hash_name, mgf_hash) from None
    except ValueError as exc:
        raise InvalidArgument("data is too long for this RSA key and padding") from exc


def _unsupported(hash_name: str, mgf_hash: str | None) -> InvalidArgument:
    return InvalidArgument(f"RSA-OAEP with {hash_name[:16]} (MGF1 {(mgf_hash or hash_name)[:16]})"
                           " is not supported")


def rsa_decrypt(key: RawKey, padding_name: str, data: bytes, *, hash_name: str = "SHA256",
                mgf_hash: str | None = None, label: bytes | None = None) -> bytes:
    """RSA-OAEP decryption (see :func:`rsa_encrypt`). ``PKCS1_V1_5`` is refused with
    RawModeNotSupported (padding oracle); any failure of the ciphertext raises
    DecryptionFailed."""
    private = _rsa_private(key)
    if padding_name == PKCS1_V1_5:
        raise RawModeNotSupported("RSA PKCS#1 v1.5 decryption is refused (a padding "
                                  "oracle); use OAEP")
    if padding_name != OAEP:
        raise InvalidArgument(f"padding {padding_name[:32]} is not supported for RSA "
                              "decryption (OAEP)")
    pad = _oaep(hash_name, mgf_hash, label)
    data = _bytes("data", data)
    if not _oaep_offered(private, pad, hash_name, mgf_hash):
        raise _unsupported(hash_name, mgf_hash)
    try:
        return private.decrypt(data, pad)
    except Exception:
        raise DecryptionFailed() from None


def _message(hash_name: str, data: bytes,
             prehashed: bool) -> tuple[bytes, hashes.HashAlgorithm | utils.Prehashed]:
    h = hash_for(hash_name)
    data = _bytes("data", data)
    if not prehashed:
        return data, h
    if len(data) != h.digest_size:
        raise InvalidArgument(f"a {hash_name} digest is {h.digest_size} bytes, not {len(data)}")
    return data, utils.Prehashed(h)


def _sig_padding(padding_name: str, hash_name: str, mgf_hash: str | None,
                 salt_length: int | None, signing: bool) -> padding.AsymmetricPadding:
    if padding_name == PKCS1_V1_5:
        return padding.PKCS1v15()
    if padding_name != PSS:
        raise InvalidArgument(f"padding {padding_name[:32]} is not supported for RSA "
                              "signatures (PSS or PKCS1_V1_5)")
    mgf = padding.MGF1(hash_for(mgf_hash or hash_name))
    if salt_length is None:
        salt: int | padding._MaxLength | padding._Auto | padding._DigestLength = (
            padding.PSS.DIGEST_LENGTH if signing else padding.PSS.AUTO)
    elif salt_length < 0:
        raise InvalidArgument("salt length must not be negative")
    else:
        salt = salt_length
    return padding.PSS(mgf=mgf, salt_length=salt)


def rsa_sign(key: RawKey, padding_name: str, hash_name: str, data: bytes, *,
             prehashed: bool = False, mgf_hash: str | None = None,
             salt_length: int | None = None) -> bytes:
    """RSASSA-PSS or RSASSA-PKCS1-v1_5 signature of ``data`` (or of the digest ``data``
    with ``prehashed``). InvalidArgument for bad arguments (a salt too long for the key, a
    hash not offered, SHA-1: :data:`NO_SIGNING`)."""
    private = _rsa_private(key)
    _signing_hash(hash_name, mgf_hash)
    message, algorithm = _message(hash_name, data, prehashed)
    pad = _sig_padding(padding_name, hash_name, mgf_hash, salt_length, signing=True)
    try:
        return private.sign(message, pad, algorithm)
    except UnsupportedAlgorithm:
        raise InvalidArgument(f"RSA signatures with {hash_name[:16]} are not "
                              "supported") from None
    except ValueError as exc:
        raise InvalidArgument("the salt or digest is too long for this RSA key") from exc


def rsa_verify(key: RawKey, padding_name: str, hash_name: str, data: bytes,
               signature: bytes, *, prehashed: bool = False, mgf_hash: str | None = None,
               salt_length: int | None = None) -> bool:
    """True if ``signature`` is valid (see :func:`rsa_sign`); False for any bad one."""
    public = _rsa_public(key)
    message, algorithm = _message(hash_name, data, prehashed)
    pad = _sig_padding(padding_name, hash_name, mgf_hash, salt_length, signing=False)
    try:
        public.verify(_bytes("signature", signature), message, pad, algorithm)
    except (InvalidSignature, ValueError):
        return False
    except UnsupportedAlgorithm:
        raise InvalidArgument(f"RSA signatures with {hash_name[:16]} are not "
                              "supported") from None
    return True


def _signing_hash(hash_name: str, mgf_hash: str | None = None) -> None:
    """Refuse a hash disallowed for signature generation (:data:`NO_SIGNING`)."""
    if hash_name in NO_SIGNING or mgf_hash in NO_SIGNING:
        raise InvalidArgument("SHA-1 is disallowed for signature generation (NIST SP "
                              "800-131A Rev 2); it is accepted for verification only")


def ecdsa_sign(key: RawKey, hash_name: str, data: bytes, *, prehashed: bool = False) -> bytes:
    """ECDSA signature (X9.62 DER) of ``data`` or, with ``prehashed``, of the digest."""
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FailedPrecondition("this operation needs an EC private key")
    _signing_hash(hash_name)
    message, algorithm = _message(hash_name, data, prehashed)
    try:
        return key.sign(message, ec.ECDSA(algorithm))
    except UnsupportedAlgorithm:
        raise InvalidArgument(f"ECDSA with {hash_name[:16]} is not supported") from None


def ecdsa_verify(key: RawKey, hash_name: str, data: bytes, signature: bytes, *,
                 prehashed: bool = False) -> bool:
    """True if the DER ``signature`` is valid; False for any bad or malformed one."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        key = key.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidArgument("this operation needs an EC key")
    message, algorithm = _message(hash_name, data, prehashed)
    try:
        key.verify(_bytes("signature", signature), message, ec.ECDSA(algorithm))
    except (InvalidSignature, ValueError):
        return False
    except UnsupportedAlgorithm:
        raise InvalidArgument(f"ECDSA with {hash_name[:16]} is not supported") from None
    return True
