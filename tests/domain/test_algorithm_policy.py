from __future__ import annotations

import dataclasses

import pytest

from keykeeper.crypto import ALGORITHMS, DEFAULT_ALGORITHMS, Purpose, get_spec
from keykeeper.domain.algorithm_policy import (
    AlgorithmPolicy,
    check_algorithm,
    resolve_algorithm,
)
from keykeeper.errors import InvalidArgument

DEFAULT = AlgorithmPolicy()
LEGACY_OK = AlgorithmPolicy(allow_legacy_rsa_2048=True)
LEGACY = sorted(n for n, s in ALGORITHMS.items() if s.legacy)
CURRENT = sorted(n for n, s in ALGORITHMS.items() if not s.legacy)


def test_policy_defaults_refuse_legacy_and_is_frozen() -> None:
    assert DEFAULT.allow_legacy_rsa_2048 is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.allow_legacy_rsa_2048 = True  # type: ignore[misc]


@pytest.mark.parametrize("name", CURRENT)
def test_current_specs_pass_for_their_purpose(name: str) -> None:
    spec = get_spec(name)
    check_algorithm(spec, spec.purpose, DEFAULT)
    assert resolve_algorithm(None, name, DEFAULT) is spec
    assert resolve_algorithm(spec.purpose.value, name, DEFAULT) is spec


def test_purpose_mismatch_message() -> None:
    with pytest.raises(InvalidArgument) as info:
        check_algorithm(get_spec("ECDSA_P256_SHA256"), Purpose.ENCRYPT, DEFAULT)
    assert info.value.detail == ("algorithm ECDSA_P256_SHA256 is for purpose 'sign', not 'encrypt'")
    with pytest.raises(InvalidArgument, match="is for purpose 'encrypt', not 'wrap'"):
        resolve_algorithm("wrap", "AES_256_GCM", DEFAULT)


@pytest.mark.parametrize("name", LEGACY)
def test_legacy_specs_are_gated(name: str) -> None:
    spec = get_spec(name)
    with pytest.raises(InvalidArgument) as info:
        check_algorithm(spec, spec.purpose, DEFAULT)
    detail = info.value.detail
    assert "RSA keys under 3072 bits are refused by policy" in detail
    assert "NIST SP 800-57 Part 1" in detail
    assert "allow_legacy_rsa_2048" in detail
    with pytest.raises(InvalidArgument, match="refused by policy"):
        resolve_algorithm(None, name, DEFAULT)
    check_algorithm(spec, spec.purpose, LEGACY_OK)
    assert resolve_algorithm(spec.purpose.value, name, LEGACY_OK) is spec


def test_legacy_purpose_mismatch_still_refused_when_allowed() -> None:
    with pytest.raises(InvalidArgument, match="is for purpose 'sign'"):
        check_algorithm(get_spec("RSA_PSS_2048_SHA256"), Purpose.ENCRYPT, LEGACY_OK)


@pytest.mark.parametrize(("purpose", "name"), sorted(DEFAULT_ALGORITHMS.items()))
def test_defaults_fill_the_algorithm(purpose: Purpose, name: str) -> None:
    assert resolve_algorithm(purpose.value, None, DEFAULT) is get_spec(name)


def test_default_values() -> None:
    assert resolve_algorithm("encrypt", None, DEFAULT).name == "AES_256_GCM"
    assert resolve_algorithm("sign", None, DEFAULT).name == "ECDSA_P256_SHA256"
    assert resolve_algorithm("mac", None, DEFAULT).name == "HMAC_SHA256"
    assert resolve_algorithm("kem", None, DEFAULT).name == "ML_KEM_768"


def test_wrap_defaults_to_aes_kwp() -> None:
    assert resolve_algorithm("wrap", None, DEFAULT).name == "AES_256_KWP"


def test_unknown_purpose() -> None:
    with pytest.raises(InvalidArgument) as info:
        resolve_algorithm("encipher", None, DEFAULT)
    assert info.value.detail.startswith("unknown purpose 'encipher'; expected one of ")
    assert "'kem'" in info.value.detail


def test_neither_given() -> None:
    with pytest.raises(InvalidArgument, match="purpose or an algorithm is required"):
        resolve_algorithm(None, None, DEFAULT)


def test_unknown_and_disallowed_algorithms() -> None:
    with pytest.raises(InvalidArgument, match=r"^unknown algorithm 'AES_512_GCM'; known: "):
        resolve_algorithm("encrypt", "AES_512_GCM", DEFAULT)
    with pytest.raises(InvalidArgument, match=r"disallowed.*SP 800-131A"):
        resolve_algorithm("sign", "RSA_PSS_2048_SHA1", LEGACY_OK)
    with pytest.raises(InvalidArgument, match=r"disallowed.*TDEA"):
        resolve_algorithm(None, "TDEA_CBC", DEFAULT)
