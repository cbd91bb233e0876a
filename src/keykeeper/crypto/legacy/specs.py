"""Legacy specs: RSA with a 2048-bit modulus, kept only for old clients (e.g. KMIP).

RSA-2048 gives 112 bits of security (NIST SP 800-57 Part 1 Rev 5 §5.6.1.1, Table 2),
acceptable only through 2030 (SP 800-57 Part 1 Rev 5 §5.6.3, Table 4), and keykeeper's
default policy refuses it (:mod:`keykeeper.domain.algorithm_policy`); a namespace
enables it with ``allow_legacy_rsa_2048``. These specs share the RSA code of
:mod:`keykeeper.crypto.rsa`; only their declarations live here, flagged ``legacy=True``,
so that a reader sees them apart.
"""

from __future__ import annotations

from keykeeper.crypto.spec import AlgorithmSpec, Purpose

__all__ = ["LEGACY_SPECS"]

_ENC, _SIGN = Purpose.ENCRYPT, Purpose.SIGN

# Columns: name, purpose, family, key_bits, security_strength, hash_name.
# All are asymmetric, classical (not post-quantum) and legacy.
_ROWS: tuple[tuple[str, Purpose, str, int, int, str], ...] = (
    ("RSA_OAEP_2048_SHA256", _ENC, "rsa_oaep", 2048, 112, "SHA256"),
    ("RSA_PSS_2048_SHA256", _SIGN, "rsa_pss", 2048, 112, "SHA256"),
    ("RSA_PKCS1_2048_SHA256", _SIGN, "rsa_pkcs1", 2048, 112, "SHA256"),
)

LEGACY_SPECS: tuple[AlgorithmSpec, ...] = tuple(
    AlgorithmSpec(
        name=name,
        purpose=purpose,
        family=family,
        key_bits=bits,
        security_strength=strength,
        asymmetric=True,
        post_quantum=False,
        legacy=True,
        hash_name=hash_name,
    )
    for name, purpose, family, bits, strength, hash_name in _ROWS
)
