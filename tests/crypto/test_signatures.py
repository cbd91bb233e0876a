"""Signature details: P1363 width, PSS salt length, prehashed digests, option errors."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from keykeeper.crypto import get_spec
from keykeeper.errors import InvalidArgument

from .keys import material, names, private, public

ECDSA = ["ECDSA_P256_SHA256", "ECDSA_P384_SHA384", "ECDSA_P521_SHA512"]
RSA_SIGN = [n for n in names() if get_spec(n).family in ("rsa_pss", "rsa_pkcs1")]
PREHASH_OK = ECDSA + RSA_SIGN
PREHASH_REFUSED = ["ED25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"]
DIGESTS = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}
PYCA_HASHES = {"SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}


def digest(name: str, data: bytes) -> bytes:
    hash_name = get_spec(name).hash_name
    assert hash_name is not None
    return DIGESTS[hash_name](data).digest()


@pytest.mark.parametrize(("name", "width"), list(zip(ECDSA, [32, 48, 66], strict=True)))
def test_p1363_signature_is_fixed_width_and_matches_der(name: str, width: int) -> None:
    key = private(name)
    for i in range(20):  # leading-zero halves turn up about once in 128 signatures
        sig = key.sign(b"m%d" % i, signature_format="p1363")
        assert len(sig) == 2 * width
        assert key.verify(b"m%d" % i, sig, signature_format="p1363")
        assert public(name).verify(b"m%d" % i, sig, signature_format="p1363")
        r = int.from_bytes(sig[:width], "big")
        s = int.from_bytes(sig[width:], "big")
        der = utils.encode_dss_signature(r, s)
        assert key.verify(b"m%d" % i, der)
        assert not key.verify(b"m%d" % i, sig)  # p1363 bytes are not DER
        assert not key.verify(b"m%d" % i, der, signature_format="p1363")
    assert not key.verify(b"m0", b"\x00" * (2 * width), signature_format="p1363")
    assert not key.verify(b"m0", b"\x01" * (2 * width + 1), signature_format="p1363")


@pytest.mark.parametrize("name", ECDSA)
def test_p1363_pads_short_halves(name: str) -> None:
    """Find a signature with a short r or s and check the zero padding."""
    key = private(name)
    width = (get_spec(name).key_bits + 7) // 8
    for i in range(2000):
        der = key.sign(b"pad%d" % i)
        r, s = utils.decode_dss_signature(der)
        if r.bit_length() <= 8 * (width - 1) or s.bit_length() <= 8 * (width - 1):
            break
    else:
        pytest.skip("no short half in 2000 signatures")
    p1363 = r.to_bytes(width, "big") + s.to_bytes(width, "big")
    assert len(p1363) == 2 * width
    assert key.verify(b"pad%d" % i, p1363, signature_format="p1363")


@pytest.mark.parametrize("name", [n for n in RSA_SIGN if get_spec(n).family == "rsa_pss"])
def test_pss_salt_length_is_digest_length(name: str) -> None:
    """Verify with an independently built PSS padding: MGF1(SHA-256), salt 32 bytes."""
    sig = private(name).sign(b"message")
    pub = serialization.load_pem_public_key(private(name).public_key_pem().encode())
    assert isinstance(pub, rsa.RSAPublicKey)
    exact = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    pub.verify(sig, b"message", exact, hashes.SHA256())
    for wrong_salt in (0, 20, 64):
        with pytest.raises(InvalidSignature):
            pub.verify(
                sig,
                b"message",
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=wrong_salt),
                hashes.SHA256(),
            )
    # PSS is randomized: two signatures differ.
    assert private(name).sign(b"message") != sig


@pytest.mark.parametrize("name", [n for n in RSA_SIGN if get_spec(n).family == "rsa_pkcs1"])
def test_pkcs1_signature_is_deterministic_and_standard(name: str) -> None:
    sig = private(name).sign(b"message")
    assert private(name).sign(b"message") == sig
    key = serialization.load_der_private_key(material(name), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.sign(b"message", padding.PKCS1v15(), hashes.SHA256()) == sig


@pytest.mark.parametrize("name", PREHASH_OK)
def test_prehashed_signing_matches_message_signing(name: str) -> None:
    key = private(name)
    message = b"the message"
    d = digest(name, message)
    sig = key.sign(d, prehashed=True)
    assert key.verify(message, sig)
    assert public(name).verify(message, sig)
    assert key.verify(d, sig, prehashed=True)
    message_sig = key.sign(message)
    assert key.verify(d, message_sig, prehashed=True)
    assert public(name).verify(d, message_sig, prehashed=True)
    assert not key.verify(digest(name, b"other"), message_sig, prehashed=True)
    if name in ECDSA:
        p = key.sign(d, prehashed=True, signature_format="p1363")
        assert key.verify(message, p, signature_format="p1363")


@pytest.mark.parametrize("name", PREHASH_OK)
def test_prehashed_digest_must_have_digest_length(name: str) -> None:
    size = len(digest(name, b""))
    for bad in (b"", b"\x00" * (size - 1), b"\x00" * (size + 1)):
        with pytest.raises(InvalidArgument, match=f"must be {size} bytes"):
            private(name).sign(bad, prehashed=True)
        with pytest.raises(InvalidArgument):
            private(name).verify(bad, b"sig", prehashed=True)
        with pytest.raises(InvalidArgument):
            public(name).verify(bad, b"sig", prehashed=True)


@pytest.mark.parametrize("name", PREHASH_REFUSED)
def test_prehashed_is_refused_for_pure_signatures(name: str) -> None:
    with pytest.raises(InvalidArgument, match="not a digest"):
        private(name).sign(b"\x00" * 32, prehashed=True)
    with pytest.raises(InvalidArgument, match="not a digest"):
        public(name).verify(b"\x00" * 32, b"s", prehashed=True)


@pytest.mark.parametrize("name", RSA_SIGN + PREHASH_REFUSED)
def test_p1363_is_refused_for_non_ecdsa(name: str) -> None:
    with pytest.raises(InvalidArgument, match="p1363"):
        private(name).sign(b"m", signature_format="p1363")
    with pytest.raises(InvalidArgument, match="p1363"):
        public(name).verify(b"m", b"s", signature_format="p1363")


@pytest.mark.parametrize("name", PREHASH_OK + PREHASH_REFUSED)
def test_unknown_signature_format_is_refused(name: str) -> None:
    for fmt in ("raw", "DER", "jws", ""):
        with pytest.raises(InvalidArgument, match="signature_format"):
            private(name).sign(b"m", signature_format=fmt)
        with pytest.raises(InvalidArgument, match="signature_format"):
            private(name).verify(b"m", b"s", signature_format=fmt)


@pytest.mark.parametrize("name", PREHASH_OK + PREHASH_REFUSED)
def test_verify_never_raises_for_garbage_signatures(name: str) -> None:
    key = private(name)
    for garbage in (b"", b"\x00", b"\x30\x00", b"\xff" * 600, b"\x30" * 5000):
        assert key.verify(b"m", garbage) is False
        assert public(name).verify(b"m", garbage) is False


def test_ecdsa_signature_verifies_with_pyca_directly() -> None:
    pub = serialization.load_pem_public_key(private("ECDSA_P384_SHA384").public_key_pem().encode())
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(private("ECDSA_P384_SHA384").sign(b"x"), b"x", ec.ECDSA(hashes.SHA384()))
