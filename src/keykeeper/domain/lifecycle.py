"""Time and usage rules of a key's life: crypto-periods, activation and deactivation
dates, minimum versions, usage limits, rotation due dates, and which use each allows.

Pure functions of a :class:`~keykeeper.domain.keys.Key` and a time; the service layer
calls them on every operation (so a rule takes effect at its instant, on every node,
without waiting for the scheduler), and the scheduler persists what they decide.

Crypto-periods (NIST SP 800-57 Part 1 Rev 5 §5.3, Table 1). A version may *protect*
(encrypt, sign, MAC, make data keys, encapsulate) during its originator usage period,
and *process* (decrypt, verify, verify a MAC, decapsulate) during its recipient usage
period. Both start at the version's creation, or at the key's activation date if that
is later. Defaults, by key class, taken from the upper ends of Table 1 (a year is 365 days):

=====================================  ===================  ===========================
key class                              originator (OUP)     recipient (RUP, from start)
=====================================  ===================  ===========================
symmetric encryption / wrapping / MAC  2 years              5 years (OUP + 3 years)
private signature key (verify: public)  3 years              6 years ("several years")
asymmetric encryption (key transport)  2 years              2 years (private key ≤ 2 y)
key encapsulation (ML-KEM)             2 years              2 years (key establishment)
=====================================  ===================  ===========================

A key or a namespace may override either period (seconds, RUP ≥ OUP).

Minimum versions (as Vault's transit engine). ``min_decryption_version``: versions below
it refuse to process; 0 (the default) lets every version process. ``min_encryption_version``:
0 (the default) means *latest only* -- only the primary version protects, and a caller who
pins an older ``key_version`` is refused; n ≥ 1 lets a caller pin any version ≥ n.

Usage limits. AES-GCM and ChaCha20-Poly1305 with random 96-bit nonces may seal at most
2^32 messages under one key (NIST SP 800-38D §8.3): that is the default hard limit of
protect operations per version; other algorithms have none unless set. Rotation starts at
``usage_rotate_fraction`` (default 0.9) of the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keykeeper.crypto.registry import Purpose, get_spec
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.states import KeyState, Use, VersionState, check_key_use
from keykeeper.errors import FailedPrecondition, InvalidArgument

__all__ = [
    "DEFAULT_ROTATE_FRACTION",
    "GCM_RANDOM_NONCE_LIMIT",
    "YEAR",
    "Periods",
    "check_use",
    "default_periods",
    "default_usage_limit",
    "effective_key_state",
    "originator_end",
    "periods_for",
    "recipient_end",
    "rotation_due",
    "rotation_threshold",
    "usage_limit",
    "validate_periods",
    "version_start",
]

YEAR = 365 * 86_400
GCM_RANDOM_NONCE_LIMIT = 2 ** 32          # NIST SP 800-38D §8.3
DEFAULT_ROTATE_FRACTION = 0.9
_RANDOM_NONCE_FAMILIES = frozenset({"aes_gcm", "chacha20_poly1305"})


@dataclass(frozen=True, slots=True)
class Periods:
    """A crypto-period in seconds: ``originator`` (may protect) and ``recipient`` (may
    process), both counted from the version's start."""

    originator: int
    recipient: int


_SYMMETRIC = Periods(2 * YEAR, 5 * YEAR)
_SIGNATURE = Periods(3 * YEAR, 6 * YEAR)
_KEY_TRANSPORT = Periods(2 * YEAR, 2 * YEAR)


def default_periods(purpose: Purpose | str, asymmetric: bool) -> Periods:
    """SP 800-57 Part 1 Table 1 defaults for a key class (see the module docstring)."""
    if purpose == Purpose.SIGN:
        return _SIGNATURE
    if purpose == Purpose.KEM or (purpose == Purpose.ENCRYPT and asymmetric):
        return _KEY_TRANSPORT
    return _SYMMETRIC


def validate_periods(originator: int | None, recipient: int | None) -> None:
    """InvalidArgument unless both given periods are positive and RUP ≥ OUP."""
    for value, what in ((originator, "originator_usage_period"),
                        (recipient, "recipient_usage_period")):
        if value is not None and value < 3600:
            raise InvalidArgument(f"{what} must be at least 1 hour")
    if originator is not None and recipient is not None and recipient < originator:
        raise InvalidArgument("recipient_usage_period must be at least the "
                              "originator_usage_period (SP 800-57 §5.3)")


def periods_for(key: Key, namespace_originator: int | None = None,
                namespace_recipient: int | None = None) -> Periods:
    """The key's crypto-period: its own overrides, then its namespace's, then the default.
    The recipient period is never shorter than the originator period: a recipient period
    set (by the key or its namespace) below the *default* originator period shortens the
    originator period to it (the stricter setting wins); below an originator period that
    was set, it is raised to it (key-level settings cannot get there: they are checked)."""
    base = default_periods(key.purpose, get_spec(key.algorithm).asymmetric)
    chosen = key.originator_usage_period or namespace_originator
    originator = chosen or base.originator
    recipient = key.recipient_usage_period or namespace_recipient or base.recipient
    if recipient < originator:
        if chosen is None:
            originator = recipient
        else:
            recipient = originator
    return Periods(originator, recipient)


def version_start(key: Key, version: KeyVersion) -> datetime:
    """When the version's crypto-period starts: its creation, or the key's activation
    date when that is later (a pre-active key's clock has not started)."""
    if key.activation_date is not None and key.activation_date > version.created_at:
        return key.activation_date
    return version.created_at


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def _after(start: datetime, seconds: int) -> datetime:
    """``start`` + ``seconds``, or the end of representable time (never an overflow)."""
    try:
        return start + timedelta(seconds=seconds)
    except OverflowError:
        return _END_OF_TIME


def originator_end(key: Key, version: KeyVersion, periods: Periods) -> datetime:
    return _after(version_start(key, version), periods.originator)


def recipient_end(key: Key, version: KeyVersion, periods: Periods) -> datetime:
    return _after(version_start(key, version), periods.recipient)


def effective_key_state(key: Key, now: datetime) -> KeyState:
    """The key's state at ``now``: a pre-active key whose activation date has come is
    active, an active key past its deactivation date is deactivated (KMIP 2.1 §4.1, 4.2;
    the scheduler records these transitions; use is decided by this function at once)."""
    state = key.state
    if (state == KeyState.PRE_ACTIVE and key.activation_date is not None
            and key.activation_date <= now):
        state = KeyState.ACTIVE
    if (state == KeyState.ACTIVE and key.deactivation_date is not None
            and key.deactivation_date <= now):
        state = KeyState.DEACTIVATED
    return state


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def check_use(key: Key, version: KeyVersion, use: Use, now: datetime, periods: Periods, *,
              allow_compromised: bool = False) -> None:
    """Raise :class:`FailedPrecondition` unless ``version`` of ``key`` may be used for
    ``use`` at ``now``: states (domain/states.py) at ``now``, minimum versions, the
    crypto-period, and compromise (processing with a compromised key or version needs
    ``allow_compromised``, an audited recovery flag)."""
    n = version.version
    key_state = effective_key_state(key, now)
    compromised = (key_state == KeyState.COMPROMISED
                   or version.state == VersionState.COMPROMISED)
    if key_state == KeyState.PRE_ACTIVE:
        raise FailedPrecondition(
            "the key is pre-active" + (f" until {_stamp(key.activation_date)}"
                                       if key.activation_date else "")
            + ": it cannot be used before its activation date")
    check_key_use(key_state, version.state, use, version=n)
    if use is Use.PROTECT:
        floor = key.min_encryption_version
        if n != key.primary_version and (floor == 0 or n < floor):
            raise FailedPrecondition(
                f"key version {n} may not protect: only the primary version does"
                if floor == 0 else
                f"key version {n} is below the key's min_encryption_version ({floor})")
        end = originator_end(key, version, periods)
        if now >= end:
            raise FailedPrecondition(
                f"key version {n} passed the end of its originator usage period "
                f"({_stamp(end)}): it cannot encrypt, sign, MAC or make data keys; rotate "
                "the key")
        return
    if key.min_decryption_version and n < key.min_decryption_version:
        raise FailedPrecondition(
            f"key version {n} is below the key's min_decryption_version "
            f"({key.min_decryption_version})")
    end = recipient_end(key, version, periods)
    if now >= end:
        raise FailedPrecondition(
            f"key version {n} passed the end of its recipient usage period ({_stamp(end)}): "
            "it cannot decrypt or verify")
    if compromised and not allow_compromised:
        what = "the key" if key_state == KeyState.COMPROMISED else f"key version {n}"
        raise FailedPrecondition(
            f"{what} is compromised: decrypt or verify with it only with "
            "allow_compromised (a recovery flag that is audited)")


def default_usage_limit(algorithm: str) -> int | None:
    """The hard limit of protect operations per version by algorithm, or None."""
    if get_spec(algorithm).family in _RANDOM_NONCE_FAMILIES:
        return GCM_RANDOM_NONCE_LIMIT
    return None


def usage_limit(key: Key) -> int | None:
    """The key's hard limit of protect operations per version (its own, else the
    algorithm's default), or None for no limit."""
    return key.usage_limit if key.usage_limit is not None else default_usage_limit(
        key.algorithm)


def rotation_threshold(key: Key) -> int | None:
    """The count of protect operations on the primary version at which a rotation is
    started (the soft threshold: ``floor(limit x fraction)``, at least 1, and below the
    hard limit whenever the limit is above 1, so a rotation always starts before
    operations are refused), or None."""
    limit = usage_limit(key)
    if limit is None:
        return None
    fraction = (key.usage_rotate_fraction if key.usage_rotate_fraction is not None
                else DEFAULT_ROTATE_FRACTION)
    threshold = max(1, math.floor(limit * fraction))
    return min(threshold, limit - 1) if limit > 1 else threshold


def rotation_due(key: Key, now: datetime) -> bool:
    """True if the scheduler should rotate ``key`` at ``now``: it is active (at ``now``)
    and its next rotation time has come (by its period, or moved to now by usage)."""
    return (effective_key_state(key, now) == KeyState.ACTIVE
            and key.next_rotation_time is not None and key.next_rotation_time <= now)
