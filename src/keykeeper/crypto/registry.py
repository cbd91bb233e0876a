"""The algorithm registry: every spec keykeeper offers, the defaults, and the refusals.

Built once from the plain tables below (no registration side effects). Lookups go
through :func:`get_spec`, which also explains, with the rule it comes from, why a
well-known but disallowed name (SHA-1, 3DES, RSA-1024, ECB, DSA, P-192, ...) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from keykeeper.crypto.legacy.specs import LEGACY_SPECS
from keykeeper.crypto.spec import AlgorithmSpec, Purpose
from keykeeper.errors import InvalidArgument

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "AlgorithmSpec",
    "Purpose",
    "get_spec",
]

_E, _S, _M, _K, _W = Purpose.ENCRYPT, Purpose.SIGN, Purpose.MAC, Purpose.KEM, Purpose.WRAP
_D = Purpose.STORE

# Columns: name, purpose, family, key_bits, security_strength (NIST SP 800-57 Part 1
# Rev 5 Tables 2 and 3; FIPS 203/204 categories), asymmetric, post_quantum, hash_name.
# RSA-4096 is ~152 bits by the SP 800-57 estimate; the table's nearest lower step, 128, is used.
_ROWS: tuple[tuple[str, Purpose, str, int, int, bool, bool, str | None], ...] = (
    ("AES_128_GCM", _E, "aes_gcm", 128, 128, False, False, None),
    ("AES_192_GCM", _E, "aes_gcm", 192, 192, False, False, None),  # KMIP clients ask for it
    ("AES_256_GCM", _E, "aes_gcm", 256, 256, False, False, None),
    ("CHACHA20_POLY1305", _E, "chacha20_poly1305", 256, 256, False, False, None),
    ("RSA_OAEP_3072_SHA256", _E, "rsa_oaep", 3072, 128, True, False, "SHA256"),
    ("RSA_OAEP_4096_SHA256", _E, "rsa_oaep", 4096, 128, True, False, "SHA256"),
    ("RSA_PSS_3072_SHA256", _S, "rsa_pss", 3072, 128, True, False, "SHA256"),
    ("RSA_PSS_4096_SHA256", _S, "rsa_pss", 4096, 128, True, False, "SHA256"),
    ("RSA_PKCS1_3072_SHA256", _S, "rsa_pkcs1", 3072, 128, True, False, "SHA256"),
    ("RSA_PKCS1_4096_SHA256", _S, "rsa_pkcs1", 4096, 128, True, False, "SHA256"),
    ("ECDSA_P256_SHA256", _S, "ecdsa", 256, 128, True, False, "SHA256"),
    ("ECDSA_P384_SHA384", _S, "ecdsa", 384, 192, True, False, "SHA384"),
    ("ECDSA_P521_SHA512", _S, "ecdsa", 521, 256, True, False, "SHA512"),
    ("ED25519", _S, "ed25519", 255, 128, True, False, None),
    ("ML_DSA_44", _S, "ml_dsa", 128, 128, True, True, None),
    ("ML_DSA_65", _S, "ml_dsa", 192, 192, True, True, None),
    ("ML_DSA_87", _S, "ml_dsa", 256, 256, True, True, None),
    ("HMAC_SHA256", _M, "hmac", 256, 256, False, False, "SHA256"),
    ("HMAC_SHA384", _M, "hmac", 384, 256, False, False, "SHA384"),
    ("HMAC_SHA512", _M, "hmac", 512, 256, False, False, "SHA512"),
    ("ML_KEM_768", _K, "ml_kem", 192, 192, True, True, None),
    ("ML_KEM_1024", _K, "ml_kem", 256, 256, True, True, None),
    # Wrap keys (crypto/wrap.py): export and import of key material only, never data.
    # AES-KWP is RFC 5649; the RSA rows are RSA-AES key wrap (PKCS#11 CKM_RSA_AES_KEY_WRAP).
    ("AES_256_KWP", _W, "aes_kwp", 256, 256, False, False, None),
    ("RSA_OAEP_3072_SHA256_KWP", _W, "rsa_aes_kwp", 3072, 128, True, False, "SHA256"),
    ("RSA_OAEP_4096_SHA256_KWP", _W, "rsa_aes_kwp", 4096, 128, True, False, "SHA256"),
    # Stored data, not keys (purpose store): KMIP Secret Data (a password, a seed) and
    # Opaque Objects, registered with their bytes (1 B to 64 KiB, crypto/stored.py) and
    # wrapped under the namespace KEK like key material; never generated, no operation.
    # key_bits and security_strength are 0: the material has no fixed size or strength.
    ("SECRET_DATA", _D, "secret_data", 0, 0, False, False, None),
    ("OPAQUE_DATA", _D, "opaque_data", 0, 0, False, False, None),
    # A KMIP Certificate: the DER of one X.509 certificate (public data, stored the same
    # way; parsed on registration, crypto/stored.py check_certificate).
    ("X509_CERTIFICATE", _D, "x509_certificate", 0, 0, False, False, None),
)

_CURRENT_SPECS: tuple[AlgorithmSpec, ...] = tuple(
    AlgorithmSpec(
        name=name,
        purpose=purpose,
        family=family,
        key_bits=bits,
        security_strength=strength,
        asymmetric=asymmetric,
        post_quantum=post_quantum,
        legacy=False,
        hash_name=hash_name,
    )
    for name, purpose, family, bits, strength, asymmetric, post_quantum, hash_name in _ROWS
)

ALGORITHMS: Mapping[str, AlgorithmSpec] = MappingProxyType(
    {spec.name: spec for spec in (*_CURRENT_SPECS, *LEGACY_SPECS)}
)
"""Every spec by name, legacy ones included (read-only)."""

DEFAULT_ALGORITHMS: Mapping[Purpose, str] = MappingProxyType(
    {
        Purpose.ENCRYPT: "AES_256_GCM",
        Purpose.SIGN: "ECDSA_P256_SHA256",
        Purpose.MAC: "HMAC_SHA256",
        Purpose.KEM: "ML_KEM_768",
        Purpose.WRAP: "AES_256_KWP",
    }
)
"""The algorithm for a key created with a purpose and no algorithm."""

_SP800_131A = "NIST SP 800-131A Rev 2"

# (pattern over the upper-cased name, reason with its rule). First match wins.
_DISALLOWED: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(^|_)(SHA_?1|SHA_?160)(_|$)"),
        "SHA-1 is disallowed for digital signature generation and no longer collision "
        f"resistant ({_SP800_131A} §9, Table 8); keykeeper refuses it for every purpose",
    ),
    (
        re.compile(r"(^|_)(MD2|MD4|MD5|RIPEMD\w*)(_|$)"),
        f"the hash function is not approved ({_SP800_131A} §9; FIPS 180-4 lists the "
        "approved hash functions)",
    ),
    (
        re.compile(r"(^|_)(3DES|TDES|TDEA|TRIPLE_?DES|DES_?EDE\w*|DES)(_|$)"),
        f"TDEA (3DES) encryption is disallowed after 2023, and DES long before "
        f"({_SP800_131A} §2, Table 1)",
    ),
    (
        re.compile(r"(^|_)(RC2|RC4|ARCFOUR|BLOWFISH|CAST\d*|IDEA|SEED)(_|$)"),
        f"the cipher is not an approved block cipher ({_SP800_131A} §2, Table 1)",
    ),
    (
        re.compile(r"^(DSA)(_|$)"),
        "DSA is no longer approved for signature generation (FIPS 186-5 §1; "
        f"{_SP800_131A} §3, Table 2 for its key sizes)",
    ),
    (
        re.compile(r"(^|_)(P_?192|SECP192R1|PRIME192V1|P_?160|SECP160\w*)(_|$)"),
        f"curves under 224 bits give under 112 bits of security, disallowed for "
        f"signature generation ({_SP800_131A} §3, Table 2; SP 800-57 Part 1 Rev 5 Table 2)",
    ),
    (
        re.compile(r"^RSA(_[A-Z0-9]+)*?_(512|768|1024|1536)(_|$)"),
        f"RSA moduli under 2048 bits give under 112 bits of security and are disallowed "
        f"({_SP800_131A} §3, Table 2 and §6, Table 5)",
    ),
    (
        re.compile(r"(^|_)ECB(_|$)"),
        "ECB mode encrypts equal blocks to equal ciphertexts and gives no integrity; "
        "keykeeper offers authenticated encryption only (NIST SP 800-38D GCM, RFC 8439)",
    ),
    (
        re.compile(r"(^|_)(AES_?40|AES_?56|AES_?64)(_|$)"),
        f"keys under 112 bits are disallowed ({_SP800_131A} §2, Table 1)",
    ),
)


def get_spec(name: str) -> AlgorithmSpec:
    """Return the spec called ``name`` (case-insensitive, e.g. ``"AES_256_GCM"``).

    Raises :class:`~keykeeper.errors.InvalidArgument`: ``unknown algorithm 'X'`` for a
    name keykeeper does not know, or ``algorithm 'X' is disallowed: <reason> (<rule>)``
    for a well-known name that NIST SP 800-131A Rev 2 (or FIPS 186-5, SP 800-57)
    disallows, such as anything with SHA-1, 3DES/TDEA, RSA-1024, AES ECB, DSA or P-192.
    Legacy specs (RSA-2048) are returned; policy decides whether they may be used.
    """
    if not isinstance(name, str):
        raise InvalidArgument("algorithm name must be a string")
    key = name.strip().upper().replace("-", "_")
    spec = ALGORITHMS.get(key)
    if spec is not None:
        return spec
    shown = name[:64]
    for pattern, reason in _DISALLOWED:
        if pattern.search(key):
            raise InvalidArgument(f"algorithm '{shown}' is disallowed: {reason}")
    known = ", ".join(name for name, spec in ALGORITHMS.items() if not spec.legacy)
    raise InvalidArgument(f"unknown algorithm '{shown}'; known: {known}")
