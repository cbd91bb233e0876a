"""Elliptic-curve signature handles: ECDSA over P-256/P-384/P-521 and Ed25519.

ECDSA (FIPS 186-5 §6; curves from SP 800-186) hashes with the spec's hash: SHA-256 for
P-256, SHA-384 for P-384, SHA-512 for P-521. Signatures are X9.62 DER by default, or
IEEE P1363 ``r || s`` with each half left-padded with zeros to the curve's byte size
(32, 48, 66 bytes). Ed25519 is PureEdDSA (RFC 8032 §5.1; FIPS 186-5 §7): it signs the
message itself, so ``prehashed`` is refused. Material is PKCS#8 DER.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from keykeeper.crypto.base import KeyHandle, PublicKeyHandle, require_bytes
from keykeeper.crypto.keyio import private_der, public_pem, wrong_key_type
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.crypto.symmetric import hash_algorithm
from keykeeper.errors import InvalidArgument

__all__ = [
    "EcdsaKeyHandle",
    "EcdsaPublicKeyHandle",
    "Ed25519KeyHandle",
    "Ed25519PublicKeyHandle",
    "curve_for",
    "ecdsa_private_handle",
    "ecdsa_public_handle",
    "ed25519_private_handle",
    "ed25519_public_handle",
    "generate_ecdsa",
    "generate_ed25519",
]

_CURVES: dict[int, type[ec.EllipticCurve]] = {
    256: ec.SECP256R1,
    384: ec.SECP384R1,
    521: ec.SECP521R1,
}


def curve_for(spec: AlgorithmSpec) -> ec.EllipticCurve:
    """The pyca curve object for an ECDSA spec (by ``key_bits``)."""
    return _CURVES[spec.key_bits]()


def _coordinate_size(spec: AlgorithmSpec) -> int:
    return (spec.key_bits + 7) // 8


def generate_ecdsa(spec: AlgorithmSpec) -> bytes:
    """A fresh ECDSA key on the spec's curve, as PKCS#8 DER."""
    return private_der(ec.generate_private_key(curve_for(spec)))


def generate_ed25519(spec: AlgorithmSpec) -> bytes:
    """A fresh Ed25519 key, as PKCS#8 DER (48 bytes)."""
    return private_der(ed25519.Ed25519PrivateKey.generate())


def _check_curve(spec: AlgorithmSpec, curve: ec.EllipticCurve) -> None:
    expected = curve_for(spec)
    if curve.name != expected.name:
        raise wrong_key_type(spec, f"curve is {curve.name}, not {expected.name}")


def ecdsa_private_handle(spec: AlgorithmSpec, key: PrivateKeyTypes) -> EcdsaKeyHandle:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise wrong_key_type(spec, "not an EC private key")
    _check_curve(spec, key.curve)
    return EcdsaKeyHandle(spec, key)


def ecdsa_public_handle(spec: AlgorithmSpec, key: PublicKeyTypes) -> EcdsaPublicKeyHandle:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise wrong_key_type(spec, "not an EC public key")
    _check_curve(spec, key.curve)
    return EcdsaPublicKeyHandle(spec, key)


def ed25519_private_handle(spec: AlgorithmSpec, key: PrivateKeyTypes) -> Ed25519KeyHandle:
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise wrong_key_type(spec, "not an Ed25519 private key")
    return Ed25519KeyHandle(spec, key)


def ed25519_public_handle(spec: AlgorithmSpec, key: PublicKeyTypes) -> Ed25519PublicKeyHandle:
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise wrong_key_type(spec, "not an Ed25519 public key")
    return Ed25519PublicKeyHandle(spec, key)


def _ecdsa_algorithm(spec: AlgorithmSpec, data: bytes, prehashed: bool) -> ec.ECDSA:
    h = hash_algorithm(spec)
    if not prehashed:
        return ec.ECDSA(h)
    if len(data) != h.digest_size:
        raise InvalidArgument(
            f"a prehashed {spec.hash_name} digest must be {h.digest_size} bytes, not {len(data)}"
        )
    return ec.ECDSA(utils.Prehashed(h))


def _ecdsa_verify(
    spec: AlgorithmSpec,
    key: ec.EllipticCurvePublicKey,
    data: bytes,
    signature: bytes,
    prehashed: bool,
    signature_format: str,
) -> bool:
    message = require_bytes("data", data)
    sig = require_bytes("signature", signature)
    algorithm = _ecdsa_algorithm(spec, message, prehashed)
    if signature_format == "p1363":
        size = _coordinate_size(spec)
        if len(sig) != 2 * size:
            return False
        r = int.from_bytes(sig[:size], "big")
        s = int.from_bytes(sig[size:], "big")
        sig = utils.encode_dss_signature(r, s)
    try:
        key.verify(sig, message, algorithm)
    except (InvalidSignature, ValueError):
        return False
    return True


class EcdsaPublicKeyHandle(PublicKeyHandle):
    """ECDSA public key: ``verify`` with DER or P1363 signatures, message or digest."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, key: ec.EllipticCurvePublicKey) -> None:
        super().__init__(spec)
        self._key = key

    def public_key_pem(self) -> str:
        return public_pem(self._key)

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        prehashed: bool = False,
        signature_format: str = "der",
    ) -> bool:
        self._check_signature_args(prehashed, signature_format)
        return _ecdsa_verify(self._spec, self._key, data, signature, prehashed, signature_format)


class EcdsaKeyHandle(KeyHandle):
    """ECDSA private key (FIPS 186-5 §6)."""

    __slots__ = ("_key", "_public")

    def __init__(self, spec: AlgorithmSpec, key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__(spec)
        self._key = key
        self._public = key.public_key()

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        """ECDSA signature of ``data`` (or of the digest ``data`` when ``prehashed``).

        ``signature_format``: ``"der"`` (X9.62 ``ECDSA-Sig-Value``, variable length) or
        ``"p1363"`` (``r || s``, exactly 64/96/132 bytes). A prehashed digest must be
        exactly the hash's length (32/48/64 bytes). Bad arguments raise InvalidArgument.
        """
        self._check_signature_args(prehashed, signature_format)
        message = require_bytes("data", data)
        der = self._key.sign(message, _ecdsa_algorithm(self._spec, message, prehashed))
        if signature_format == "der":
            return der
        r, s = utils.decode_dss_signature(der)
        size = _coordinate_size(self._spec)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        prehashed: bool = False,
        signature_format: str = "der",
    ) -> bool:
        self._check_signature_args(prehashed, signature_format)
        return _ecdsa_verify(self._spec, self._public, data, signature, prehashed, signature_format)


def _ed25519_verify(key: ed25519.Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    message = require_bytes("data", data)
    sig = require_bytes("signature", signature)
    try:
        key.verify(sig, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class Ed25519PublicKeyHandle(PublicKeyHandle):
    """Ed25519 public key: ``verify`` of 64-byte signatures over the message."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, key: ed25519.Ed25519PublicKey) -> None:
        super().__init__(spec)
        self._key = key

    def public_key_pem(self) -> str:
        return public_pem(self._key)

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        prehashed: bool = False,
        signature_format: str = "der",
    ) -> bool:
        self._check_signature_args(prehashed, signature_format)
        return _ed25519_verify(self._key, data, signature)


class Ed25519KeyHandle(KeyHandle):
    """Ed25519 private key (RFC 8032); ``prehashed`` and ``p1363`` raise InvalidArgument."""

    __slots__ = ("_key", "_public")

    def __init__(self, spec: AlgorithmSpec, key: ed25519.Ed25519PrivateKey) -> None:
        super().__init__(spec)
        self._key = key
        self._public = key.public_key()

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        """64-byte Ed25519 signature of ``data`` (RFC 8032 §5.1.6)."""
        self._check_signature_args(prehashed, signature_format)
        return self._key.sign(require_bytes("data", data))

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        prehashed: bool = False,
        signature_format: str = "der",
    ) -> bool:
        self._check_signature_args(prehashed, signature_format)
        return _ed25519_verify(self._public, data, signature)
