"""RSA handles: RSAES-OAEP encryption, RSASSA-PSS and RSASSA-PKCS1-v1_5 signatures (RFC 8017).

Parameters, fixed per spec: OAEP with the spec's hash and MGF1 with the same hash, the
caller's ``aad`` as the OAEP label (RFC 8017 §7.1); PSS with MGF1 of the same hash and a
salt as long as the digest (RFC 8017 §9.1, FIPS 186-5 §5.4); public exponent 65537 on
generation (FIPS 186-5 Appendix A.1.1). Material is PKCS#8 DER.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from keykeeper.crypto.base import KeyHandle, PublicKeyHandle, require_bytes
from keykeeper.crypto.keyio import private_der, public_pem, wrong_key_type
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.crypto.symmetric import hash_algorithm
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument

__all__ = [
    "RsaKeyHandle",
    "RsaPublicKeyHandle",
    "check_rsa_public_numbers",
    "generate_rsa",
    "rsa_private_handle",
    "rsa_public_handle",
]

PUBLIC_EXPONENT = 65537
_SIGNING_FAMILIES = ("rsa_pss", "rsa_pkcs1")


def generate_rsa(spec: AlgorithmSpec) -> bytes:
    """A fresh RSA key of ``spec.key_bits`` bits, e = 65537, as PKCS#8 DER."""
    return private_der(rsa.generate_private_key(PUBLIC_EXPONENT, spec.key_bits))


def check_rsa_public_numbers(spec: AlgorithmSpec, key: rsa.RSAPublicKey) -> None:
    """The modulus has the spec's size and the exponent is allowed (InvalidArgument)."""
    if key.key_size != spec.key_bits:
        raise wrong_key_type(spec, f"modulus is {key.key_size} bits, not {spec.key_bits}")
    e = key.public_numbers().e
    # FIPS 186-5 §A.1.1 / SP 800-56B Rev 2 §6.2: 2**16 < e < 2**256, odd.
    if not (2**16 < e < 2**256 and e % 2 == 1):
        raise wrong_key_type(spec, "public exponent is outside 2**16 < e < 2**256")


def rsa_private_handle(spec: AlgorithmSpec, key: PrivateKeyTypes) -> RsaKeyHandle:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise wrong_key_type(spec, "not an RSA private key")
    check_rsa_public_numbers(spec, key.public_key())
    return RsaKeyHandle(spec, key)


def rsa_public_handle(spec: AlgorithmSpec, key: PublicKeyTypes) -> RsaPublicKeyHandle:
    if not isinstance(key, rsa.RSAPublicKey):
        raise wrong_key_type(spec, "not an RSA public key")
    check_rsa_public_numbers(spec, key)
    return RsaPublicKeyHandle(spec, key)


def _oaep(spec: AlgorithmSpec, aad: bytes) -> padding.OAEP:
    h = hash_algorithm(spec)
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=aad or None)


def _signature_padding(spec: AlgorithmSpec) -> padding.AsymmetricPadding:
    if spec.family == "rsa_pss":
        h = hash_algorithm(spec)
        return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    return padding.PKCS1v15()


def _digest_argument(
    spec: AlgorithmSpec, data: bytes, prehashed: bool
) -> tuple[bytes, utils.Prehashed | hashes.HashAlgorithm]:
    h = hash_algorithm(spec)
    if not prehashed:
        return data, h
    if len(data) != h.digest_size:
        raise InvalidArgument(
            f"a prehashed {spec.hash_name} digest must be {h.digest_size} bytes, not {len(data)}"
        )
    return data, utils.Prehashed(h)


def _encrypt(spec: AlgorithmSpec, key: rsa.RSAPublicKey, plaintext: bytes, aad: bytes) -> bytes:
    if spec.family != "rsa_oaep":
        raise _unsupported(spec, "encrypt")
    data = require_bytes("plaintext", plaintext)
    label = require_bytes("aad", aad)
    limit = (key.key_size + 7) // 8 - 2 * hash_algorithm(spec).digest_size - 2
    if len(data) > limit:
        raise InvalidArgument(
            f"plaintext is {len(data)} bytes; {spec.name} encrypts at most {limit} bytes "
            "(RFC 8017 §7.1.1)"
        )
    return key.encrypt(data, _oaep(spec, label))


def _verify(
    spec: AlgorithmSpec,
    key: rsa.RSAPublicKey,
    data: bytes,
    signature: bytes,
    prehashed: bool,
) -> bool:
    if spec.family not in _SIGNING_FAMILIES:
        raise _unsupported(spec, "verify")
    message, algorithm = _digest_argument(spec, require_bytes("data", data), prehashed)
    sig = require_bytes("signature", signature)
    try:
        key.verify(sig, message, _signature_padding(spec), algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True


def _unsupported(spec: AlgorithmSpec, operation: str) -> FailedPrecondition:
    return FailedPrecondition(f"algorithm {spec.name} does not support {operation}")


class RsaPublicKeyHandle(PublicKeyHandle):
    """RSA public key: ``verify`` (PSS, PKCS#1 v1.5) or ``encrypt`` (OAEP)."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, key: rsa.RSAPublicKey) -> None:
        super().__init__(spec)
        self._key = key

    def public_key_pem(self) -> str:
        return public_pem(self._key)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """RSAES-OAEP; ``aad`` is the label. InvalidArgument if the plaintext is too long."""
        return _encrypt(self._spec, self._key, plaintext, aad)

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        prehashed: bool = False,
        signature_format: str = "der",
    ) -> bool:
        if self._spec.family not in _SIGNING_FAMILIES:
            self._unsupported("verify")
        self._check_signature_args(prehashed, signature_format)
        return _verify(self._spec, self._key, data, signature, prehashed)


class RsaKeyHandle(KeyHandle):
    """RSA private key for one of OAEP (encrypt/decrypt), PSS or PKCS#1 v1.5 (sign/verify)."""

    __slots__ = ("_key", "_public")

    def __init__(self, spec: AlgorithmSpec, key: rsa.RSAPrivateKey) -> None:
        super().__init__(spec)
        self._key = key
        self._public = key.public_key()

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """RSAES-OAEP with ``aad`` as the label; the ciphertext is modulus-sized.

        Raises InvalidArgument if ``plaintext`` exceeds ``k - 2*hLen - 2`` bytes
        (RFC 8017 §7.1.1; 318 bytes for RSA-3072 with SHA-256).
        """
        return _encrypt(self._spec, self._public, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """RSAES-OAEP decryption; any failure raises DecryptionFailed (uniform)."""
        if self._spec.family != "rsa_oaep":
            self._unsupported("decrypt")
        try:
            data = require_bytes("blob", blob)
            label = require_bytes("aad", aad)
            return self._key.decrypt(data, _oaep(self._spec, label))
        except Exception:
            raise DecryptionFailed() from None

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        """RSASSA-PSS or RSASSA-PKCS1-v1_5 signature, modulus-sized.

        With ``prehashed=True``, ``data`` is the digest and must be exactly the digest
        length (32 bytes for SHA-256), else InvalidArgument. ``signature_format`` must be
        ``"der"`` (the RSA signature itself); ``"p1363"`` raises InvalidArgument.
        """
        if self._spec.family not in _SIGNING_FAMILIES:
            self._unsupported("sign")
        self._check_signature_args(prehashed, signature_format)
        message, algorithm = _digest_argument(self._spec, require_bytes("data", data), prehashed)
        return self._key.sign(message, _signature_padding(self._spec), algorithm)

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        prehashed: bool = False,
        signature_format: str = "der",
    ) -> bool:
        if self._spec.family not in _SIGNING_FAMILIES:
            self._unsupported("verify")
        self._check_signature_args(prehashed, signature_format)
        return _verify(self._spec, self._public, data, signature, prehashed)
