"""Post-quantum handles: ML-DSA signatures (FIPS 204) and ML-KEM key encapsulation (FIPS 203).

Material: PKCS#8 DER holding the seed-only private key (the ``seed`` choice of the IETF
LAMPS ML-DSA and ML-KEM private key formats, as pyca/cryptography writes them), which is
what ``generate_material`` returns (54 bytes for ML-DSA, 86 for ML-KEM). ``load_private``
also accepts the raw seed (ML-DSA: 32-byte xi, FIPS 204 Algorithm 1; ML-KEM: 64-byte
d || z, FIPS 203 §7.1), as KMIP and test vectors carry it. Expanded private keys are not accepted.

ML-DSA signs the message itself with an empty context (FIPS 204 Algorithm 2, pure
ML-DSA, hedged); ``prehashed`` and ``p1363`` raise InvalidArgument. ML-KEM decapsulation
of a well-formed but wrong ciphertext yields a pseudorandom secret (implicit rejection,
FIPS 203 Algorithm 18), not an error; a ciphertext of the wrong length raises
DecryptionFailed.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from keykeeper.crypto.base import KeyHandle, PublicKeyHandle, require_bytes
from keykeeper.crypto.keyio import load_private_der, private_der, public_pem, wrong_key_type
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import DecryptionFailed, InvalidArgument

__all__ = [
    "MlDsaKeyHandle",
    "MlDsaPublicKeyHandle",
    "MlKemKeyHandle",
    "MlKemPublicKeyHandle",
    "generate_mldsa",
    "generate_mlkem",
    "mldsa_private_handle",
    "mldsa_public_handle",
    "mlkem_private_handle",
    "mlkem_public_handle",
]

MLDSA_SEED_SIZE: Final = 32
MLKEM_SEED_SIZE: Final = 64

MlDsaPrivate = mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
MlDsaPublic = mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey
MlKemPrivate = mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey
MlKemPublic = mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey

# key_bits (security category) -> (private class, public class, ...)
_MLDSA: Final[
    dict[
        int,
        tuple[
            type[mldsa.MLDSA44PrivateKey]
            | type[mldsa.MLDSA65PrivateKey]
            | type[mldsa.MLDSA87PrivateKey],
            type[mldsa.MLDSA44PublicKey]
            | type[mldsa.MLDSA65PublicKey]
            | type[mldsa.MLDSA87PublicKey],
        ],
    ]
] = {
    128: (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey),
    192: (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey),
    256: (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey),
}
# key_bits -> (private class, public class, ciphertext bytes)
_MLKEM: Final[
    dict[
        int,
        tuple[
            type[mlkem.MLKEM768PrivateKey] | type[mlkem.MLKEM1024PrivateKey],
            type[mlkem.MLKEM768PublicKey] | type[mlkem.MLKEM1024PublicKey],
            int,
        ],
    ]
] = {
    192: (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, 1088),
    256: (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, 1568),
}


def generate_mldsa(spec: AlgorithmSpec) -> bytes:
    """A fresh ML-DSA key as seed-only PKCS#8 DER (54 bytes)."""
    return private_der(_MLDSA[spec.key_bits][0].generate())


def generate_mlkem(spec: AlgorithmSpec) -> bytes:
    """A fresh ML-KEM key as seed-only PKCS#8 DER (86 bytes)."""
    return private_der(_MLKEM[spec.key_bits][0].generate())


def _from_material(spec: AlgorithmSpec, material: object, seed_size: int) -> PrivateKeyTypes:
    data = require_bytes("key material", material)
    if len(data) == seed_size:
        cls = (_MLDSA if spec.family == "ml_dsa" else _MLKEM)[spec.key_bits][0]
        try:
            return cls.from_seed_bytes(data)
        except ValueError:
            raise InvalidArgument(f"key material is not a valid seed for {spec.name}") from None
    if len(data) < seed_size + 8:
        raise InvalidArgument(
            f"key material for {spec.name} must be a {seed_size}-byte seed or PKCS#8 DER"
        )
    return load_private_der(spec, data)


def mldsa_private_handle(spec: AlgorithmSpec, material: bytes) -> MlDsaKeyHandle:
    key = _from_material(spec, material, MLDSA_SEED_SIZE)
    if not isinstance(key, _MLDSA[spec.key_bits][0]):
        raise wrong_key_type(spec, "not an ML-DSA private key of this parameter set")
    return MlDsaKeyHandle(spec, key)


def mldsa_public_handle(spec: AlgorithmSpec, key: PublicKeyTypes) -> MlDsaPublicKeyHandle:
    if not isinstance(key, _MLDSA[spec.key_bits][1]):
        raise wrong_key_type(spec, "not an ML-DSA public key of this parameter set")
    return MlDsaPublicKeyHandle(spec, key)


def mlkem_private_handle(spec: AlgorithmSpec, material: bytes) -> MlKemKeyHandle:
    key = _from_material(spec, material, MLKEM_SEED_SIZE)
    if not isinstance(key, _MLKEM[spec.key_bits][0]):
        raise wrong_key_type(spec, "not an ML-KEM private key of this parameter set")
    return MlKemKeyHandle(spec, key)


def mlkem_public_handle(spec: AlgorithmSpec, key: PublicKeyTypes) -> MlKemPublicKeyHandle:
    if not isinstance(key, _MLKEM[spec.key_bits][1]):
        raise wrong_key_type(spec, "not an ML-KEM public key of this parameter set")
    return MlKemPublicKeyHandle(spec, key)


def _mldsa_verify(key: MlDsaPublic, data: bytes, signature: bytes) -> bool:
    message = require_bytes("data", data)
    sig = require_bytes("signature", signature)
    try:
        key.verify(sig, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class MlDsaPublicKeyHandle(PublicKeyHandle):
    """ML-DSA public key: ``verify`` (empty context)."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, key: MlDsaPublic) -> None:
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
        return _mldsa_verify(self._key, data, signature)


class MlDsaKeyHandle(KeyHandle):
    """ML-DSA private key (FIPS 204); signatures are 2420/3309/4627 bytes."""

    __slots__ = ("_key", "_public")

    def __init__(self, spec: AlgorithmSpec, key: MlDsaPrivate) -> None:
        super().__init__(spec)
        self._key = key
        self._public: MlDsaPublic = key.public_key()

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        """Hedged ML-DSA signature of ``data`` with an empty context (FIPS 204 Algorithm 2)."""
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
        return _mldsa_verify(self._public, data, signature)


class MlKemPublicKeyHandle(PublicKeyHandle):
    """ML-KEM encapsulation key: ``encapsulate``."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, key: MlKemPublic) -> None:
        super().__init__(spec)
        self._key = key

    def public_key_pem(self) -> str:
        return public_pem(self._key)

    def encapsulate(self) -> tuple[bytes, bytes]:
        """``(shared_secret(32), ciphertext(1088 | 1568))`` (FIPS 203 Algorithm 20)."""
        return self._key.encapsulate()


class MlKemKeyHandle(KeyHandle):
    """ML-KEM decapsulation key (FIPS 203)."""

    __slots__ = ("_ciphertext_size", "_key", "_public")

    def __init__(self, spec: AlgorithmSpec, key: MlKemPrivate) -> None:
        super().__init__(spec)
        self._key = key
        self._public: MlKemPublic = key.public_key()
        self._ciphertext_size = _MLKEM[spec.key_bits][2]

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def encapsulate(self) -> tuple[bytes, bytes]:
        """``(shared_secret(32), ciphertext(1088 | 1568))`` to this key's public half."""
        return self._public.encapsulate()

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """The 32-byte shared secret (FIPS 203 Algorithm 21).

        A ciphertext of the wrong length (or not bytes) raises DecryptionFailed; a
        well-formed wrong ciphertext yields an unrelated secret (implicit rejection).
        """
        try:
            data = require_bytes("ciphertext", ciphertext)
            if len(data) != self._ciphertext_size:
                raise DecryptionFailed()
            return self._key.decapsulate(data)
        except Exception:
            raise DecryptionFailed() from None
