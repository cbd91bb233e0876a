"""Algorithm policy: which spec a key may use for which purpose, and the legacy gate.

Pure rules over :mod:`keykeeper.crypto.registry`:

* a key has one purpose and its algorithm must be made for it (cryptographic
  segmentation, NIST SP 800-57 Part 1 Rev 5 §5.2);
* RSA-2048 (112-bit security, SP 800-57 Part 1 Rev 5 §5.6.1.1 Table 2; acceptable only
  through 2030, §5.6.3 Table 4) is refused unless the namespace policy sets
  ``allow_legacy_rsa_2048``;
* names NIST SP 800-131A Rev 2 disallows are refused by :func:`keykeeper.crypto.get_spec`.
"""

from __future__ import annotations

from dataclasses import dataclass

from keykeeper.crypto.registry import DEFAULT_ALGORITHMS, AlgorithmSpec, Purpose, get_spec
from keykeeper.errors import InvalidArgument

__all__ = ["AlgorithmPolicy", "check_algorithm", "resolve_algorithm"]


@dataclass(frozen=True)
class AlgorithmPolicy:
    """A namespace's algorithm policy. The default refuses every legacy spec."""

    allow_legacy_rsa_2048: bool = False


_LEGACY_REFUSAL = (
    "RSA keys under 3072 bits are refused by policy (NIST SP 800-57 Part 1 Rev 5 §5.6.1.1 "
    "Table 2: RSA-2048 gives 112 bits of security, acceptable only through 2030 per "
    "§5.6.3 Table 4); a namespace policy allow_legacy_rsa_2048 enables them"
)


def check_algorithm(spec: AlgorithmSpec, purpose: Purpose, policy: AlgorithmPolicy) -> None:
    """Raise InvalidArgument unless ``spec`` may serve ``purpose`` under ``policy``.

    Messages: ``algorithm X is for purpose 'sign', not 'encrypt'``, or, for a legacy
    spec without ``allow_legacy_rsa_2048``, ``algorithm X: RSA keys under 3072 bits are
    refused by policy (...)``.
    """
    if spec.purpose != purpose:
        raise InvalidArgument(
            f"algorithm {spec.name} is for purpose '{spec.purpose}', not '{purpose}'"
        )
    if spec.legacy and not policy.allow_legacy_rsa_2048:
        raise InvalidArgument(f"algorithm {spec.name}: {_LEGACY_REFUSAL}")


def _parse_purpose(purpose: str) -> Purpose:
    try:
        return Purpose(purpose)
    except ValueError:
        expected = ", ".join(f"'{p}'" for p in Purpose)
        raise InvalidArgument(
            f"unknown purpose '{str(purpose)[:32]}'; expected one of {expected}"
        ) from None


def resolve_algorithm(
    purpose: str | None, algorithm: str | None, policy: AlgorithmPolicy
) -> AlgorithmSpec:
    """The spec for a new key from what the caller gave: a purpose, an algorithm, or both.

    * purpose only: the purpose's default (``DEFAULT_ALGORITHMS``);
    * algorithm only: that algorithm, whose purpose is implied;
    * both: they must agree.

    Then :func:`check_algorithm` applies the policy. Raises InvalidArgument for neither
    given, an unknown purpose, an unknown or disallowed algorithm, a mismatch, or a
    legacy algorithm the policy refuses.
    """
    if purpose is None and algorithm is None:
        raise InvalidArgument("a purpose or an algorithm is required")
    wanted = _parse_purpose(purpose) if purpose is not None else None
    if algorithm is None:
        assert wanted is not None
        default = DEFAULT_ALGORITHMS.get(wanted)
        if default is None:
            raise InvalidArgument(
                f"purpose '{wanted}' has no default algorithm; name one explicitly"
            )
        spec = get_spec(default)
    else:
        spec = get_spec(algorithm)
    check_algorithm(spec, wanted if wanted is not None else spec.purpose, policy)
    return spec
