"""Key handles whose private or secret operations run in the PKCS#11 token.

They are :class:`~keykeeper.crypto.base.KeyHandle` s like any other, so the service layer
uses an HSM-protected version exactly as a software one, and the results have the same
formats (custody/hsm/mechanisms.py). Every private or secret operation (AES-GCM encrypt
and decrypt, RSA-PSS and ECDSA sign, RSA-OAEP decrypt, HMAC sign and verify) is one call
into the token on a pooled session; public-key operations (verify, RSA-OAEP encrypt,
public-key export) use the public key stored in the version row, with pyca/cryptography.

Faults fail closed, never falling back to software: a token that cannot be reached or
logged in to, or a session error, raises Unavailable (503); a missing mechanism or a
token object that is gone (destroyed, or another token) raises FailedPrecondition (409);
any failure to decrypt raises the uniform DecryptionFailed.

Token object handles are found once per pooled session (``C_FindObjects`` is slow on
large tokens) and kept with that session; a handle the token no longer knows is looked
up again once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pkcs11
import pkcs11.exceptions as p11x
from pkcs11 import ObjectClass

from keykeeper.crypto import load_public
from keykeeper.crypto.aead import NONCE_SIZE, TAG_SIZE
from keykeeper.crypto.base import KeyHandle, PublicKeyHandle, require_bytes
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.custody.hsm.mechanisms import (
    check_digest,
    digest,
    ecdsa_raw_to_der,
    hmac_mechanism,
    oaep_params,
    pss_params,
)
from keykeeper.custody.hsm.token import Token
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument

__all__ = ["HsmAeadKeyHandle", "HsmEcdsaKeyHandle", "HsmHmacKeyHandle", "HsmRsaKeyHandle",
           "hsm_handle"]

T = TypeVar("T")

# What the token answers when a ciphertext or tag does not verify (SoftHSM answers
# CKR_GENERAL_ERROR for a bad GCM tag): all of them are the one DecryptionFailed.
_DECRYPT_REFUSALS = (p11x.EncryptedDataInvalid, p11x.EncryptedDataLenRange, p11x.DataInvalid,
                     p11x.DataLenRange, p11x.GeneralError, p11x.FunctionFailed)
# Token parameters refused: the token cannot do the operation as keykeeper specifies it.
_UNSUPPORTED = (p11x.ArgumentsBad, p11x.MechanismInvalid, p11x.MechanismParamInvalid,
                p11x.FunctionNotSupported)
_STALE = (p11x.KeyHandleInvalid, p11x.ObjectHandleInvalid)


class _HsmHandle(KeyHandle):
    """One token object, by ``CKA_ID``, with the version's public key if it has one."""

    __slots__ = ("_class", "_id", "_objects", "_public", "_token")

    def __init__(self, spec: AlgorithmSpec, token: Token, cka_id: str,
                 public_key_pem: str | None, object_class: ObjectClass) -> None:
        super().__init__(spec)
        self._token = token
        self._id = bytes.fromhex(cka_id)
        self._class = object_class
        # id(session) -> token object found in it; the object holds its session, so the
        # id cannot be reused while the entry exists.
        self._objects: dict[int, Any] = {}
        self._public: PublicKeyHandle | None = (
            load_public(spec, public_key_pem.encode()) if public_key_pem else None)

    def _object(self, s: Any) -> Any:
        obj = self._objects.get(id(s))
        if obj is None:
            try:
                obj = s.get_key(object_class=self._class, id=self._id)
            except p11x.NoSuchKey:
                raise FailedPrecondition(
                    f"the HSM key of this {self._spec.name} version is not on the token "
                    "(destroyed, or another token is configured)") from None
            except p11x.MultipleObjectsReturned:
                raise FailedPrecondition("the HSM holds several objects with this key "
                                         "version's CKA_ID") from None
            self._objects[id(s)] = obj
        return obj

    def _run(self, op: Callable[[Any], T]) -> T:
        """``op(token object)`` on a pooled session; a stale object handle is found again
        once. Errors map as the module docstring says (token.py maps the rest)."""
        with self._token.session() as s:
            try:
                return op(self._object(s))
            except _STALE:
                self._objects.pop(id(s), None)
                return op(self._object(s))

    def _public_handle(self) -> PublicKeyHandle:
        if self._public is None:
            self._unsupported("public keys")
        return self._public

    def public_key_pem(self) -> str:
        return self._public_handle().public_key_pem()

    def verify(self, data: bytes, signature: bytes, *, prehashed: bool = False,
               signature_format: str = "der") -> bool:
        """With the stored public key (pyca/cryptography); see :meth:`KeyHandle.verify`."""
        return self._public_handle().verify(data, signature, prehashed=prehashed,
                                            signature_format=signature_format)


class HsmAeadKeyHandle(_HsmHandle):
    """AES-GCM key in the token: ``nonce(12) || ciphertext || tag(16)``, the nonce from
    ``os.urandom`` (NIST SP 800-38D §8.2.2) and passed in ``CK_GCM_PARAMS``."""

    __slots__ = ()

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal in the token; InvalidArgument for non-bytes arguments."""
        return self.encrypt_many([(plaintext, aad)])[0]

    def encrypt_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Seal each ``(plaintext, aad)`` on one borrowed session (one nonce draw)."""
        checked = [(require_bytes("plaintext", p), require_bytes("aad", a)) for p, a in items]
        nonces = os.urandom(NONCE_SIZE * len(checked))

        def seal(key: Any) -> list[bytes]:
            out = []
            for i, (plaintext, aad) in enumerate(checked):
                nonce = nonces[i * NONCE_SIZE:(i + 1) * NONCE_SIZE]
                out.append(nonce + bytes(key.encrypt(
                    plaintext, mechanism=pkcs11.Mechanism.AES_GCM,
                    mechanism_param=pkcs11.GCMParams(nonce, aad, TAG_SIZE * 8))))
            return out

        return self._run(seal)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """Open in the token; any failure to open raises DecryptionFailed (uniform)."""
        try:
            data = require_bytes("blob", blob)
            associated = require_bytes("aad", aad)
        except InvalidArgument:
            raise DecryptionFailed() from None
        if len(data) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionFailed()

        def open_(key: Any) -> bytes:
            try:
                return bytes(key.decrypt(data[NONCE_SIZE:], mechanism=pkcs11.Mechanism.AES_GCM,
                                         mechanism_param=pkcs11.GCMParams(
                                             data[:NONCE_SIZE], associated, TAG_SIZE * 8)))
            except _DECRYPT_REFUSALS:
                raise DecryptionFailed() from None

        return self._run(open_)


class HsmHmacKeyHandle(_HsmHandle):
    """HMAC key in the token (``CKK_GENERIC_SECRET``); tags are full length and checked
    by ``C_Verify`` in the token."""

    __slots__ = ()

    def mac(self, message: bytes) -> bytes:
        data = require_bytes("message", message)
        mech = hmac_mechanism(self._spec)
        return self._run(lambda key: bytes(key.sign(data, mechanism=mech)))

    def verify_mac(self, message: bytes, tag: bytes) -> bool:
        """True if ``tag`` is the full-length tag of ``message``; any other length is False
        (as crypto/symmetric.py: no truncated tags)."""
        data = require_bytes("message", message)
        candidate = require_bytes("tag", tag)
        size = self._spec.key_bits // 8
        if len(candidate) != size:  # the length is public; the value is compared in the HSM
            return False
        mech = hmac_mechanism(self._spec)
        return self._run(lambda key: bool(key.verify(data, candidate, mechanism=mech)))


class HsmRsaKeyHandle(_HsmHandle):
    """RSA private key in the token: RSA-PSS ``sign`` or RSA-OAEP ``decrypt`` there;
    ``verify`` and ``encrypt`` with the stored public key."""

    __slots__ = ()

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """RSAES-OAEP with the public key (``aad`` is the label), as crypto/rsa.py."""
        return self._public_handle().encrypt(plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """RSAES-OAEP in the token; DecryptionFailed for any bad ciphertext,
        FailedPrecondition if the token refuses the OAEP parameters."""
        if self._spec.family != "rsa_oaep":
            self._unsupported("decrypt")
        try:
            data = require_bytes("blob", blob)
            params = oaep_params(self._spec, require_bytes("aad", aad))
        except InvalidArgument:
            raise DecryptionFailed() from None

        def open_(key: Any) -> bytes:
            try:
                return bytes(key.decrypt(data, mechanism=pkcs11.Mechanism.RSA_PKCS_OAEP,
                                         mechanism_param=params))
            except _DECRYPT_REFUSALS:
                raise DecryptionFailed() from None
            except _UNSUPPORTED as exc:
                raise FailedPrecondition(f"the HSM refuses RSA-OAEP with {self._spec.hash_name}"
                                         f" and a label ({type(exc).__name__})") from None

        return self._run(open_)

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        """RSASSA-PSS in the token over the SHA-256 digest (computed here unless
        ``prehashed``); the same signature format and arguments as crypto/rsa.py."""
        if self._spec.family != "rsa_pss":
            self._unsupported("sign")
        self._check_signature_args(prehashed, signature_format)
        message = require_bytes("data", data)
        h = check_digest(self._spec, message) if prehashed else digest(self._spec, message)
        params = pss_params(self._spec)
        return self._run(lambda key: bytes(key.sign(
            h, mechanism=pkcs11.Mechanism.RSA_PKCS_PSS, mechanism_param=params)))


class HsmEcdsaKeyHandle(_HsmHandle):
    """ECDSA private key in the token (``CKM_ECDSA`` over the spec's digest): DER by
    default, ``p1363`` ``r || s`` fixed-width, as crypto/ecc.py."""

    __slots__ = ()

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        self._check_signature_args(prehashed, signature_format)
        message = require_bytes("data", data)
        h = check_digest(self._spec, message) if prehashed else digest(self._spec, message)
        raw = self._run(lambda key: bytes(key.sign(h, mechanism=pkcs11.Mechanism.ECDSA)))
        der = ecdsa_raw_to_der(self._spec, raw)    # checks that r || s is 2 * 32 / 48 bytes
        return raw if signature_format == "p1363" else der


_CLASSES: dict[str, tuple[type[_HsmHandle], ObjectClass]] = {
    "aes_gcm": (HsmAeadKeyHandle, ObjectClass.SECRET_KEY),
    "hmac": (HsmHmacKeyHandle, ObjectClass.SECRET_KEY),
    "rsa_pss": (HsmRsaKeyHandle, ObjectClass.PRIVATE_KEY),
    "rsa_oaep": (HsmRsaKeyHandle, ObjectClass.PRIVATE_KEY),
    "ecdsa": (HsmEcdsaKeyHandle, ObjectClass.PRIVATE_KEY),
}


def hsm_handle(token: Token, spec: AlgorithmSpec, cka_id: str,
               public_key_pem: str | None) -> KeyHandle:
    """The handle of a token object (``CKA_ID`` hex) for ``spec``; the object is looked up
    at the first operation. FailedPrecondition for a family the HSM does not hold."""
    entry = _CLASSES.get(spec.family)
    if entry is None:
        raise FailedPrecondition(f"algorithm {spec.name} cannot be HSM-protected")
    cls, object_class = entry
    return cls(spec, token, cka_id, public_key_pem, object_class)

