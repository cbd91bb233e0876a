from __future__ import annotations

import dataclasses

import pytest

import keykeeper.crypto as crypto
from keykeeper.crypto import ALGORITHMS, DEFAULT_ALGORITHMS, AlgorithmSpec, Purpose, get_spec
from keykeeper.errors import InvalidArgument

EXPECTED = {
    # name: (purpose, family, key_bits, security_strength, asymmetric, pq, legacy, hash)
    "AES_128_GCM": ("encrypt", "aes_gcm", 128, 128, False, False, False, None),
    "AES_192_GCM": ("encrypt", "aes_gcm", 192, 192, False, False, False, None),
    "AES_256_GCM": ("encrypt", "aes_gcm", 256, 256, False, False, False, None),
    "CHACHA20_POLY1305": ("encrypt", "chacha20_poly1305", 256, 256, False, False, False, None),
    "RSA_OAEP_3072_SHA256": ("encrypt", "rsa_oaep", 3072, 128, True, False, False, "SHA256"),
    "RSA_OAEP_4096_SHA256": ("encrypt", "rsa_oaep", 4096, 128, True, False, False, "SHA256"),
    "RSA_PSS_3072_SHA256": ("sign", "rsa_pss", 3072, 128, True, False, False, "SHA256"),
    "RSA_PSS_4096_SHA256": ("sign", "rsa_pss", 4096, 128, True, False, False, "SHA256"),
    "RSA_PKCS1_3072_SHA256": ("sign", "rsa_pkcs1", 3072, 128, True, False, False, "SHA256"),
    "RSA_PKCS1_4096_SHA256": ("sign", "rsa_pkcs1", 4096, 128, True, False, False, "SHA256"),
    "ECDSA_P256_SHA256": ("sign", "ecdsa", 256, 128, True, False, False, "SHA256"),
    "ECDSA_P384_SHA384": ("sign", "ecdsa", 384, 192, True, False, False, "SHA384"),
    "ECDSA_P521_SHA512": ("sign", "ecdsa", 521, 256, True, False, False, "SHA512"),
    "ED25519": ("sign", "ed25519", 255, 128, True, False, False, None),
    "ML_DSA_44": ("sign", "ml_dsa", 128, 128, True, True, False, None),
    "ML_DSA_65": ("sign", "ml_dsa", 192, 192, True, True, False, None),
    "ML_DSA_87": ("sign", "ml_dsa", 256, 256, True, True, False, None),
    "HMAC_SHA256": ("mac", "hmac", 256, 256, False, False, False, "SHA256"),
    "HMAC_SHA384": ("mac", "hmac", 384, 256, False, False, False, "SHA384"),
    "HMAC_SHA512": ("mac", "hmac", 512, 256, False, False, False, "SHA512"),
    "ML_KEM_768": ("kem", "ml_kem", 192, 192, True, True, False, None),
    "ML_KEM_1024": ("kem", "ml_kem", 256, 256, True, True, False, None),
    "AES_256_KWP": ("wrap", "aes_kwp", 256, 256, False, False, False, None),
    "RSA_OAEP_3072_SHA256_KWP": ("wrap", "rsa_aes_kwp", 3072, 128, True, False, False, "SHA256"),
    "RSA_OAEP_4096_SHA256_KWP": ("wrap", "rsa_aes_kwp", 4096, 128, True, False, False, "SHA256"),
    "RSA_OAEP_2048_SHA256": ("encrypt", "rsa_oaep", 2048, 112, True, False, True, "SHA256"),
    "RSA_PSS_2048_SHA256": ("sign", "rsa_pss", 2048, 112, True, False, True, "SHA256"),
    "RSA_PKCS1_2048_SHA256": ("sign", "rsa_pkcs1", 2048, 112, True, False, True, "SHA256"),
    "SECRET_DATA": ("store", "secret_data", 0, 0, False, False, False, None),
    "OPAQUE_DATA": ("store", "opaque_data", 0, 0, False, False, False, None),
    "X509_CERTIFICATE": ("store", "x509_certificate", 0, 0, False, False, False, None),
}


def test_registry_holds_exactly_the_expected_specs() -> None:
    assert set(ALGORITHMS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_spec_fields(name: str) -> None:
    spec = ALGORITHMS[name]
    assert spec.name == name
    assert (
        spec.purpose,
        spec.family,
        spec.key_bits,
        spec.security_strength,
        spec.asymmetric,
        spec.post_quantum,
        spec.legacy,
        spec.hash_name,
    ) == EXPECTED[name]
    assert get_spec(name) is spec


def test_only_legacy_specs_are_rsa_2048_in_the_legacy_package() -> None:
    from keykeeper.crypto.legacy import LEGACY_SPECS

    legacy = {s.name for s in ALGORITHMS.values() if s.legacy}
    assert legacy == {s.name for s in LEGACY_SPECS}
    assert all(s.key_bits == 2048 and s.family.startswith("rsa_") for s in LEGACY_SPECS)


def test_registry_is_immutable() -> None:
    with pytest.raises(TypeError):
        ALGORITHMS["X"] = ALGORITHMS["AES_256_GCM"]  # type: ignore[index]
    with pytest.raises(TypeError):
        DEFAULT_ALGORITHMS[Purpose.ENCRYPT] = "X"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALGORITHMS["AES_256_GCM"].key_bits = 1  # type: ignore[misc]


def test_defaults() -> None:
    assert dict(DEFAULT_ALGORITHMS) == {
        Purpose.ENCRYPT: "AES_256_GCM",
        Purpose.SIGN: "ECDSA_P256_SHA256",
        Purpose.MAC: "HMAC_SHA256",
        Purpose.KEM: "ML_KEM_768",
        Purpose.WRAP: "AES_256_KWP",
    }
    for purpose, name in DEFAULT_ALGORITHMS.items():
        assert ALGORITHMS[name].purpose == purpose
        assert not ALGORITHMS[name].legacy


def test_purpose_values() -> None:
    assert [p.value for p in Purpose] == ["encrypt", "sign", "mac", "wrap", "kem", "store"]
    assert Purpose("sign") == "sign"


def test_get_spec_is_case_insensitive() -> None:
    assert get_spec("aes_256_gcm") is ALGORITHMS["AES_256_GCM"]
    assert get_spec("ML-KEM-768") is ALGORITHMS["ML_KEM_768"]


def test_unknown_algorithm() -> None:
    with pytest.raises(InvalidArgument,
                       match=r"^unknown algorithm 'NOPE_1'; known: AES_128_GCM, AES_192_GCM, "):
        get_spec("NOPE_1")


@pytest.mark.parametrize(
    ("name", "reason", "rule"),
    [
        ("RSA_PSS_2048_SHA1", "SHA-1", "SP 800-131A Rev 2 §9"),
        ("HMAC_SHA1", "SHA-1", "SP 800-131A Rev 2 §9"),
        ("ECDSA_P256_SHA1", "SHA-1", "SP 800-131A Rev 2 §9"),
        ("RSA_PKCS1_2048_MD5", "not approved", "SP 800-131A Rev 2 §9"),
        ("TDEA_CBC", "TDEA", "SP 800-131A Rev 2 §2"),
        ("3DES", "TDEA", "SP 800-131A Rev 2 §2"),
        ("DES_EDE3_CBC", "TDEA", "SP 800-131A Rev 2 §2"),
        ("RC4", "not an approved block cipher", "SP 800-131A Rev 2 §2"),
        ("RSA_1024", "under 2048 bits", "SP 800-131A Rev 2 §3"),
        ("RSA_OAEP_1024_SHA256", "under 2048 bits", "SP 800-131A Rev 2 §3"),
        ("RSA_PSS_1536_SHA256", "under 2048 bits", "SP 800-131A Rev 2 §3"),
        ("AES_128_ECB", "ECB", "SP 800-38D"),
        ("AES_256_ECB", "ECB", "SP 800-38D"),
        ("DSA_2048_SHA256", "DSA is no longer approved", "FIPS 186-5"),
        ("ECDSA_P192_SHA256", "under 112 bits", "SP 800-131A Rev 2 §3"),
    ],
)
def test_disallowed_names_explain_reason_and_rule(name: str, reason: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        get_spec(name)
    detail = info.value.detail
    assert detail.startswith(f"algorithm '{name}' is disallowed: ")
    assert reason in detail
    assert rule in detail


def test_get_spec_rejects_non_strings() -> None:
    with pytest.raises(InvalidArgument):
        get_spec(123)  # type: ignore[arg-type]


def test_unknown_name_is_truncated_in_message() -> None:
    with pytest.raises(InvalidArgument) as info:
        get_spec("X" * 1000)
    shown = info.value.detail.split(";")[0]
    assert len(shown) < 100 and "known: AES_128_GCM, AES_192_GCM" in info.value.detail


def test_public_surface_is_exactly_the_intended_names() -> None:
    assert sorted(crypto.__all__) == sorted(
        [
            "ALGORITHMS",
            "DEFAULT_ALGORITHMS",
            "AlgorithmSpec",
            "KeyHandle",
            "PublicKeyHandle",
            "Purpose",
            "aead_open",
            "aead_seal",
            "generate_material",
            "get_spec",
            "load_private",
            "load_public",
            "random_bytes",
        ]
    )
    for name in crypto.__all__:
        assert hasattr(crypto, name)
    assert isinstance(ALGORITHMS["AES_256_GCM"], AlgorithmSpec)


def test_crypto_imports_nothing_from_outer_layers() -> None:
    """crypto/ is pure: only keykeeper.errors may be imported from outside it."""
    import ast
    from pathlib import Path

    root = Path(crypto.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                if module.startswith("keykeeper"):
                    assert module.startswith(("keykeeper.crypto", "keykeeper.errors")), (
                        f"{path.name} imports {module}"
                    )
