"""Wycheproof signature-verification vectors through load_public / verify.

Rule: every valid case verifies, every invalid case is refused (verify returns False,
or load_public raises InvalidArgument for a malformed key); acceptable cases may go
either way but must not raise anything else.
"""

from __future__ import annotations

from typing import Any

import pytest

from keykeeper.crypto import PublicKeyHandle, get_spec, load_public
from keykeeper.errors import InvalidArgument

from .wycheproof_loader import h, load, params

_CACHE: dict[tuple[str, str], PublicKeyHandle] = {}


def _public(name: str, der_hex: str) -> PublicKeyHandle:
    """Load each group key once (per process), as a caller would cache it."""
    key = (name, der_hex)
    if key not in _CACHE:
        _CACHE[key] = load_public(get_spec(name), h(der_hex))
    return _CACHE[key]


def _suite(spec_name: str, filename: str, skip: Any = None) -> list[Any]:
    return [
        pytest.param(
            spec_name, *p.values, id=f"{filename.removesuffix('_test.json')}-{p.id}", marks=p.marks
        )
        for p in (params(filename, skip) if skip else params(filename))
    ]


def _check_verify(
    name: str, der_hex: str, case: dict[str, Any], *, signature_format: str = "der"
) -> None:
    msg, sig = h(case["msg"]), h(case["sig"])
    if case["result"] == "invalid":
        try:
            handle = _public(name, der_hex)
        except InvalidArgument:
            return  # a malformed key refused at load is a refusal
        assert handle.verify(msg, sig, signature_format=signature_format) is False
        return
    handle = _public(name, der_hex)
    verdict = handle.verify(msg, sig, signature_format=signature_format)
    if case["result"] == "valid":
        assert verdict is True
    else:
        assert verdict in (True, False)


RSA_PSS = (
    _suite("RSA_PSS_2048_SHA256", "rsa_pss_2048_sha256_mgf1_32_test.json")
    + _suite("RSA_PSS_2048_SHA256", "rsa_pss_2048_sha256_mgf1_32_params_test.json")
    + _suite("RSA_PSS_3072_SHA256", "rsa_pss_3072_sha256_mgf1_32_test.json")
    + _suite("RSA_PSS_4096_SHA256", "rsa_pss_4096_sha256_mgf1_32_test.json")
)


@pytest.mark.parametrize(("name", "group", "case"), RSA_PSS)
def test_rsa_pss_verify(name: str, group: dict[str, Any], case: dict[str, Any]) -> None:
    assert (group["sha"], group["mgfSha"], group["sLen"]) == ("SHA-256", "SHA-256", 32)
    _check_verify(name, group["publicKeyDer"], case)


RSA_PKCS1 = _suite("RSA_PKCS1_2048_SHA256", "rsa_signature_2048_sha256_test.json") + _suite(
    "RSA_PKCS1_3072_SHA256", "rsa_signature_3072_sha256_test.json"
)


@pytest.mark.parametrize(("name", "group", "case"), RSA_PKCS1)
def test_rsa_pkcs1_verify(name: str, group: dict[str, Any], case: dict[str, Any]) -> None:
    assert group["sha"] == "SHA-256"
    if "SmallPublicKey" in case["flags"]:
        # FINDING (deliberate): e = 3 keys are "valid" here, but keykeeper requires
        # 2**16 < e < 2**256 (FIPS 186-5 §A.1.1, SP 800-56B Rev 2 §6.2) on every RSA key;
        # the file's notes say libraries may reject them. Assert the refusal.
        assert int(group["publicKey"]["publicExponent"], 16) <= 2**16
        with pytest.raises(InvalidArgument, match="public exponent"):
            load_public(get_spec(name), h(group["publicKeyDer"]))
        return
    _check_verify(name, group["publicKeyDer"], case)


ECDSA = [
    ("ECDSA_P256_SHA256", "ecdsa_secp256r1_sha256"),
    ("ECDSA_P384_SHA384", "ecdsa_secp384r1_sha384"),
    ("ECDSA_P521_SHA512", "ecdsa_secp521r1_sha512"),
]
ECDSA_DER = [p for name, stem in ECDSA for p in _suite(name, f"{stem}_test.json")]
ECDSA_P1363 = [p for name, stem in ECDSA for p in _suite(name, f"{stem}_p1363_test.json")]


@pytest.mark.parametrize(("name", "group", "case"), ECDSA_DER)
def test_ecdsa_der_verify(name: str, group: dict[str, Any], case: dict[str, Any]) -> None:
    _check_verify(name, group["publicKeyDer"], case)


@pytest.mark.parametrize(("name", "group", "case"), ECDSA_P1363)
def test_ecdsa_p1363_verify(name: str, group: dict[str, Any], case: dict[str, Any]) -> None:
    _check_verify(name, group["publicKeyDer"], case, signature_format="p1363")


@pytest.mark.parametrize(("name", "group", "case"), _suite("ED25519", "ed25519_test.json"))
def test_ed25519_verify(name: str, group: dict[str, Any], case: dict[str, Any]) -> None:
    _check_verify(name, group["publicKeyDer"], case)


def _mldsa_skip(group: dict[str, Any], case: dict[str, Any]) -> str | None:
    if case.get("ctx"):
        return "nonempty-context"  # keykeeper signs and verifies with the empty context
    return None


ML_DSA = _suite("ML_DSA_44", "mldsa_44_verify_test.json", _mldsa_skip) + _suite(
    "ML_DSA_65", "mldsa_65_verify_test.json", _mldsa_skip
)


@pytest.mark.parametrize(("name", "group", "case"), ML_DSA)
def test_mldsa_verify(name: str, group: dict[str, Any], case: dict[str, Any]) -> None:
    _check_verify(name, group["publicKeyDer"], case)


def test_vector_files_present_or_skipped() -> None:
    if load("ecdsa_secp256r1_sha256_test.json") is None:
        pytest.skip("Wycheproof vectors not found next to the project")
