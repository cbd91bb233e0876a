"""Keys generated inside the PKCS#11 token (``protection: "hsm"``, issue 6 §2).

A version of an HSM-protected key is one token object: an AES or generic-secret key, or
an RSA or EC private key, made by ``C_GenerateKey`` / ``C_GenerateKeyPair`` with
``CKA_TOKEN``, ``CKA_PRIVATE``, ``CKA_SENSITIVE`` true and ``CKA_EXTRACTABLE`` false
(so ``CKA_NEVER_EXTRACTABLE`` and ``CKA_LOCAL`` hold too: PKCS#11 v2.40 §4.9). It is named
by a random 16-byte ``CKA_ID`` (stored hex in ``key_versions.hsm_key_id``) and labelled
``keykeeper/<key id>/v<version>``. The public half of a key pair is made as a session
object, read (its SubjectPublicKeyInfo goes to the version row), and destroyed at once.

Before a new key pair is accepted, a pairwise consistency test (FIPS 140-3 IG 10.3.A)
signs in the token and verifies with pyca/cryptography, or encrypts with
pyca/cryptography and decrypts in the token (RSA-OAEP): a token that cannot do the
operation with keykeeper's parameters is refused at creation with FailedPrecondition,
and the object it made is destroyed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Final

import pkcs11
import pkcs11.exceptions as p11x
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from keykeeper.crypto.ecc import curve_for
from keykeeper.crypto.keyio import public_pem
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.custody.hsm.mechanisms import (
    digest,
    ecdsa_raw_to_der,
    oaep_params,
    pss_params,
)
from keykeeper.custody.hsm.token import Token
from keykeeper.errors import FailedPrecondition, InvalidArgument, KeykeeperError

__all__ = ["HSM_ALGORITHMS", "HsmKey", "check_hsm_algorithm", "destroy_hsm_key",
           "generate_hsm_key", "object_label", "relabel_hsm_key", "sha256_of_id"]

HSM_ALGORITHMS: Final[frozenset[str]] = frozenset({
    "AES_128_GCM", "AES_256_GCM",
    "RSA_PSS_3072_SHA256", "RSA_PSS_4096_SHA256",
    "RSA_OAEP_3072_SHA256", "RSA_OAEP_4096_SHA256",
    "ECDSA_P256_SHA256", "ECDSA_P384_SHA384",
    "HMAC_SHA256", "HMAC_SHA384", "HMAC_SHA512",
})
"""The algorithms a key created with ``protection: "hsm"`` may have."""

_CURVE_NAMES: Final = {256: "secp256r1", 384: "secp384r1"}
_PCT_MESSAGE: Final = b"keykeeper pairwise consistency test"
_PRIVATE: Final[dict[Attribute, Any]] = {
    Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False, Attribute.MODIFIABLE: True,
}


@dataclass(frozen=True, slots=True)
class HsmKey:
    """A key made in the token: its ``CKA_ID`` (hex), the label it was given, and the
    SubjectPublicKeyInfo PEM of a key pair (None for a secret key)."""

    cka_id: str
    label: str
    public_key_pem: str | None


def object_label(key_id: str, version: int) -> str:
    """The ``CKA_LABEL`` of a version's token object: ``keykeeper/<key id>/v<version>``."""
    return f"keykeeper/{key_id}/v{version}"


def check_hsm_algorithm(spec: AlgorithmSpec) -> None:
    """InvalidArgument, naming the supported set, unless ``spec`` may be HSM-protected."""
    if spec.name not in HSM_ALGORITHMS:
        raise InvalidArgument(
            f"algorithm {spec.name} cannot be HSM-protected; protection 'hsm' supports "
            + ", ".join(sorted(HSM_ALGORITHMS)))


def generate_hsm_key(token: Token, spec: AlgorithmSpec, key_id: str, version: int) -> HsmKey:
    """Generate a non-extractable key for ``spec`` in ``token``, labelled for version
    ``version`` of ``key_id``. Raises InvalidArgument for an algorithm outside
    :data:`HSM_ALGORITHMS`, FailedPrecondition if the token lacks the mechanism or fails
    the pairwise consistency test, Unavailable if the token cannot be used."""
    check_hsm_algorithm(spec)
    cka_id = os.urandom(16)
    label = object_label(key_id, version)
    public: str | None = None
    with token.session() as s:
        try:
            if spec.family == "aes_gcm":
                s.generate_key(KeyType.AES, spec.key_bits, id=cka_id, label=label, store=True,
                               capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                               template=dict(_PRIVATE))
            elif spec.family == "hmac":
                s.generate_key(KeyType.GENERIC_SECRET, spec.key_bits, id=cka_id, label=label,
                               store=True, capabilities=MechanismFlag.SIGN
                               | MechanismFlag.VERIFY, template=dict(_PRIVATE))
            else:
                public = _generate_pair(s, spec, cka_id, label)
        except KeykeeperError:
            _destroy_in(s, cka_id)
            raise
        except (p11x.MechanismInvalid, p11x.MechanismParamInvalid,
                p11x.FunctionNotSupported, p11x.AttributeValueInvalid,
                p11x.TemplateInconsistent, p11x.KeySizeRange) as exc:
            _destroy_in(s, cka_id)
            raise FailedPrecondition(f"the HSM cannot generate a {spec.name} key "
                                     f"({type(exc).__name__})") from None
    return HsmKey(cka_id=cka_id.hex(), label=label, public_key_pem=public)


def _generate_pair(s: Any, spec: AlgorithmSpec, cka_id: bytes, label: str) -> str:
    """Make the pair, keep the private key, return the public key's PEM after the
    pairwise consistency test (the session public object is destroyed either way)."""
    private_caps = (MechanismFlag.DECRYPT if spec.family == "rsa_oaep" else MechanismFlag.SIGN)
    public_caps = (MechanismFlag.ENCRYPT if spec.family == "rsa_oaep" else MechanismFlag.VERIFY)
    kwargs: dict[str, Any] = {
        "id": cka_id, "label": label, "store": True, "capabilities": private_caps | public_caps,
        "public_template": {Attribute.TOKEN: False, Attribute.PRIVATE: False},
        "private_template": dict(_PRIVATE)}
    if spec.family == "ecdsa":
        params = s.create_domain_parameters(KeyType.EC, {
            Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVE_NAMES[spec.key_bits])},
            local=True)
        pub, priv = params.generate_keypair(**kwargs)
    else:
        pub, priv = s.generate_keypair(KeyType.RSA, spec.key_bits, **kwargs)
    try:
        key = _public_key(spec, pub)
    finally:
        pub.destroy()
    _pairwise_test(spec, priv, key)
    return public_pem(key)


def _public_key(spec: AlgorithmSpec, pub: Any) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    if spec.family == "ecdsa":
        point = bytes(pub[Attribute.EC_POINT])
        size = 2 * ((spec.key_bits + 7) // 8) + 1
        if len(point) != size:  # DER OCTET STRING around the point (PKCS#11 v2.40 §2.3.3)
            point = point[2:] if point[1] < 0x80 else point[2 + (point[1] & 0x7F):]
        return ec.EllipticCurvePublicKey.from_encoded_point(curve_for(spec), point)
    n = int.from_bytes(pub[Attribute.MODULUS], "big")
    e = int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def _pairwise_test(spec: AlgorithmSpec, priv: Any,
                   key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> None:
    """FailedPrecondition when the token cannot serve the key as keykeeper uses it."""
    h = digest(spec, _PCT_MESSAGE)
    try:
        if spec.family == "rsa_oaep":
            assert isinstance(key, rsa.RSAPublicKey)
            hash_alg = hashes.SHA256()
            blob = key.encrypt(_PCT_MESSAGE, padding.OAEP(
                mgf=padding.MGF1(hash_alg), algorithm=hash_alg, label=b"pct"))
            ok = priv.decrypt(blob, mechanism=pkcs11.Mechanism.RSA_PKCS_OAEP,
                              mechanism_param=oaep_params(spec, b"pct")) == _PCT_MESSAGE
        elif spec.family == "rsa_pss":
            assert isinstance(key, rsa.RSAPublicKey)
            sig = priv.sign(h, mechanism=pkcs11.Mechanism.RSA_PKCS_PSS,
                            mechanism_param=pss_params(spec))
            key.verify(sig, h, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                           salt_length=32),
                       utils.Prehashed(hashes.SHA256()))
            ok = True
        else:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            sig = ecdsa_raw_to_der(spec, priv.sign(h, mechanism=pkcs11.Mechanism.ECDSA))
            hash_cls = hashes.SHA256 if spec.key_bits == 256 else hashes.SHA384
            key.verify(sig, h, ec.ECDSA(utils.Prehashed(hash_cls())))
            ok = True
    except (p11x.ArgumentsBad, p11x.MechanismInvalid, p11x.MechanismParamInvalid,
            p11x.FunctionNotSupported) as exc:
        raise FailedPrecondition(
            f"the HSM cannot serve {spec.name} keys with keykeeper's parameters "
            f"({type(exc).__name__} in the pairwise consistency test)") from None
    except (InvalidSignature, ValueError):
        ok = False
    if not ok:
        raise FailedPrecondition(f"the HSM failed the pairwise consistency test of a new "
                                 f"{spec.name} key")


def _find_all(s: Any, cka_id: bytes) -> list[Any]:
    return [o for cls in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY,
                          ObjectClass.PUBLIC_KEY)
            for o in s.get_objects({Attribute.ID: cka_id, Attribute.CLASS: cls})]


def _destroy_in(s: Any, cka_id: bytes) -> int:
    found = _find_all(s, cka_id)
    for obj in found:
        obj.destroy()
    return len(found)


def destroy_hsm_key(token: Token, cka_id: str) -> int:
    """``C_DestroyObject`` every object with ``CKA_ID`` ``cka_id`` (hex); returns how
    many there were (0: destroyed before, which is not an error). Raises Unavailable if
    the token cannot be reached (nothing is then known to be destroyed)."""
    with token.session() as s:
        return _destroy_in(s, bytes.fromhex(cka_id))


def relabel_hsm_key(token: Token, cka_id: str, label: str) -> None:
    """Set the ``CKA_LABEL`` of the key ``cka_id`` (hex): a rotation that raced another
    one stores the version under a later number than the one it was generated for."""
    with token.session() as s:
        for obj in _find_all(s, bytes.fromhex(cka_id)):
            obj[Attribute.LABEL] = label


def sha256_of_id(cka_id: str) -> str:
    """SHA-256 (hex) of a ``CKA_ID``: what a destruction receipt names for an HSM version."""
    return hashlib.sha256(bytes.fromhex(cka_id)).hexdigest()
