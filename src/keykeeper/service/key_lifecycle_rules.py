"""The rules of a key's lifecycle settings: what key creation adds (activation and
deactivation dates, usage limits, crypto-period overrides, the namespace's default rotation
period) and what a PATCH of those settings writes.

The rules of use are in domain/lifecycle.py; this module validates what a caller asks
for and computes the column values (pure: no store, no clock of its own);
service/key_lifecycle.py persists them.

PATCH fields (``changes``: a field left out keeps its value; ``None`` clears it):

=========================  ===================================================================
field                      rule
=========================  ===================================================================
rotation_period            seconds or "90d", at least 1 hour; sets next_rotation_time to now
                           (or the activation date of a pre-active key) + period; None clears
                           both
next_rotation_time         RFC 3339, in the future; None clears it
min_decryption_version     0 (every version decrypts) or 1..primary version (Vault transit)
min_encryption_version     0 (only the primary version protects) or min_decryption_version..
                           primary version (Vault transit)
usage_limit                >= 1; at most 2^32 for AES-GCM and ChaCha20-Poly1305 (NIST SP
                           800-38D §8.3); None: the algorithm's default
usage_rotate_fraction      0 < f <= 1; None: 0.9
originator_usage_period,   seconds or "730d", at least 1 hour, RUP >= OUP (SP 800-57 §5.3);
recipient_usage_period     None: the namespace's, else SP 800-57 Table 1
activation_date            only while the key is pre-active (KMIP 2.1 §4.1); a time not in
                           the future activates the key now; cannot be cleared
deactivation_date          after now and after the activation date (KMIP 2.1 §4.2); None
                           clears it; fixed once it has passed
=========================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from keykeeper.domain.keys import Key
from keykeeper.domain.lifecycle import (
    default_usage_limit,
    effective_key_state,
    periods_for,
    rotation_threshold,
    validate_periods,
)
from keykeeper.domain.states import KeyState
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.identity_views import rfc3339
from keykeeper.service.key_args import (
    CreateKey,
    check_fraction,
    check_period,
    check_rotation_period,
    check_time,
    check_usage_limit,
)
from keykeeper.store.system import NamespaceRow

__all__ = ["LIFECYCLE_FIELDS", "check_effective_periods", "lifecycle_at_creation",
           "lifecycle_changes", "usage_due"]

LIFECYCLE_FIELDS = ("rotation_period", "next_rotation_time", "min_encryption_version",
                    "min_decryption_version", "usage_limit", "usage_rotate_fraction",
                    "originator_usage_period", "recipient_usage_period", "activation_date",
                    "deactivation_date")


def _rotation_start(state: KeyState, activation: datetime | None, now: datetime) -> datetime:
    """Rotation periods count from the activation date of a pre-active key, else now."""
    if state == KeyState.PRE_ACTIVE and activation is not None and activation > now:
        return activation
    return now


def lifecycle_at_creation(key: Key, args: CreateKey, ns: NamespaceRow, now: datetime) -> Key:
    """``key`` (as built, active, from ``args``) with its lifecycle settings: pre-active
    when ``activation_date`` is in the future (KMIP 2.1 §4.1, SP 800-57 §7.1), the
    namespace's rotation period when none is given, the usage limit checked against the
    algorithm's. InvalidArgument names the field and the rule."""
    limit = args.usage_limit
    if limit is not None:
        check_usage_limit(limit, default_usage_limit(key.algorithm))
    validate_periods(args.originator_usage_period, args.recipient_usage_period)
    state, activation = KeyState.ACTIVE, None
    if args.activation_date is not None:
        if args.activation_date > now:
            state, activation = KeyState.PRE_ACTIVE, args.activation_date
        else:
            activation = now  # activated at creation: the crypto-period starts now
    if (args.deactivation_date is not None
            and args.deactivation_date <= max(now, activation or now)):
        raise InvalidArgument("deactivation_date must be after the activation date "
                              "(or after now for a key active from creation)")
    if args.originator_usage_period is not None or args.recipient_usage_period is not None:
        check_effective_periods(key, {"originator_usage_period": args.originator_usage_period,
                                      "recipient_usage_period": args.recipient_usage_period},
                                (ns.originator_usage_period, ns.recipient_usage_period))
    period = args.rotation_period if args.rotation_period is not None else ns.rotation_period
    start = _rotation_start(state, activation, now)
    return replace(
        key, state=state, activation_date=activation, deactivation_date=args.deactivation_date,
        rotation_period=period,
        next_rotation_time=start + timedelta(seconds=period) if period else None,
        usage_limit=limit, usage_rotate_fraction=args.usage_rotate_fraction,
        originator_usage_period=args.originator_usage_period,
        recipient_usage_period=args.recipient_usage_period)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{what} must be an integer")
    return value


def _check_min_versions(key: Key, decrypt: int, encrypt: int) -> None:
    """Vault transit's rules for the two floors (0 keeps its meaning: every version
    decrypts; only the primary version encrypts)."""
    primary = key.primary_version
    if not 0 <= decrypt <= primary:
        raise InvalidArgument(
            f"min_decryption_version must be 0 (every version) or between 1 and the primary "
            f"version ({primary})")
    if not 0 <= encrypt <= primary:
        raise InvalidArgument(
            f"min_encryption_version must be 0 (only the primary version) or between 1 and "
            f"the primary version ({primary})")
    if encrypt and encrypt < decrypt:
        raise InvalidArgument(
            f"min_encryption_version ({encrypt}) must be 0 or at least the "
            f"min_decryption_version ({decrypt})")


def lifecycle_changes(key: Key, changes: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The column values a PATCH of ``changes`` writes on ``key`` at ``now`` (see the
    module docstring for each field's rule); InvalidArgument naming the field and the
    rule, FailedPrecondition for a date that may no longer change."""
    unknown = set(changes) - set(LIFECYCLE_FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    state = effective_key_state(key, now)
    activation = key.activation_date
    if "activation_date" in changes:
        if state != KeyState.PRE_ACTIVE:
            raise FailedPrecondition(
                f"activation_date can change only while the key is pre-active (it is {state})")
        if changes["activation_date"] is None:
            raise InvalidArgument("activation_date cannot be cleared: set a time, or "
                                  "activate the key now with POST /v1/keys/{key}/activate")
        activation = check_time(changes["activation_date"], "activation_date")
        if activation <= now:
            activation = now
            out["state"] = str(KeyState.ACTIVE)
            state = KeyState.ACTIVE
        out["activation_date"] = activation
    if "deactivation_date" in changes:
        if key.deactivation_date is not None and key.deactivation_date <= now:
            raise FailedPrecondition(
                f"the key was deactivated at {rfc3339(key.deactivation_date)}: its "
                "deactivation_date can no longer change")
        raw = changes["deactivation_date"]
        out["deactivation_date"] = None if raw is None else check_time(raw,
                                                                       "deactivation_date")
    deactivation = out.get("deactivation_date", key.deactivation_date)
    if (deactivation is not None and ("deactivation_date" in out or "activation_date" in out)
            and deactivation <= max(now, activation or now)):
        raise InvalidArgument("deactivation_date must be after now and after the "
                              "activation date")
    period = key.rotation_period
    if key.origin == "external" and any(changes.get(f) is not None for f in (
            "rotation_period", "next_rotation_time")):
        raise InvalidArgument("an external key is not rotated by keykeeper (a new version "
                              "is imported): no rotation_period or next_rotation_time")
    if "rotation_period" in changes:
        raw = changes["rotation_period"]
        period = None if raw is None else check_rotation_period(raw)
        out["rotation_period"] = period
    if "next_rotation_time" in changes:
        raw = changes["next_rotation_time"]
        when = None if raw is None else check_time(raw, "next_rotation_time")
        if when is not None and when <= now:
            raise InvalidArgument("next_rotation_time must be in the future")
        out["next_rotation_time"] = when
    elif "rotation_period" in out or (period and "activation_date" in out):
        start = _rotation_start(state, activation, now)
        out["next_rotation_time"] = start + timedelta(seconds=period) if period else None
    decrypt, encrypt = key.min_decryption_version, key.min_encryption_version
    if "min_decryption_version" in changes:
        raw = changes["min_decryption_version"]
        decrypt = 0 if raw is None else _int(raw, "min_decryption_version")
        out["min_decryption_version"] = decrypt
    if "min_encryption_version" in changes:
        raw = changes["min_encryption_version"]
        encrypt = 0 if raw is None else _int(raw, "min_encryption_version")
        out["min_encryption_version"] = encrypt
    if "min_decryption_version" in out or "min_encryption_version" in out:
        _check_min_versions(key, decrypt, encrypt)
    if "usage_limit" in changes:
        raw = changes["usage_limit"]
        out["usage_limit"] = None if raw is None else check_usage_limit(
            raw, default_usage_limit(key.algorithm))
    if "usage_rotate_fraction" in changes:
        raw = changes["usage_rotate_fraction"]
        out["usage_rotate_fraction"] = None if raw is None else check_fraction(raw)
    for what in ("originator_usage_period", "recipient_usage_period"):
        if what in changes:
            raw = changes[what]
            out[what] = None if raw is None else check_period(raw, what)
    if "originator_usage_period" in out or "recipient_usage_period" in out:
        validate_periods(out.get("originator_usage_period", key.originator_usage_period),
                         out.get("recipient_usage_period", key.recipient_usage_period))
    return out


def check_effective_periods(key: Key, values: Mapping[str, Any],
                             namespace_periods: tuple[int | None, int | None]) -> None:
    """InvalidArgument when a PATCH leaves the key's own recipient usage period shorter
    than its effective originator usage period (its own, its namespace's or SP 800-57's):
    it would be silently lengthened (SP 800-57 §5.3: RUP ≥ OUP), not applied."""
    if "originator_usage_period" not in values and "recipient_usage_period" not in values:
        return
    after = replace(key, **{k: values[k] for k in ("originator_usage_period",
                                                   "recipient_usage_period") if k in values})
    if after.recipient_usage_period is None:
        return
    originator = periods_for(replace(after, recipient_usage_period=None),
                             *namespace_periods).originator
    if after.recipient_usage_period < originator:
        raise InvalidArgument(
            f"recipient_usage_period ({after.recipient_usage_period} s) must be at least the "
            f"key's originator usage period ({originator} s; SP 800-57 §5.3): shorten that "
            "too, or give a longer recipient period")


def usage_due(key: Key, values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A lowered usage limit or fraction that the primary version's count already
    reached starts a rotation now (as crossing the threshold does; service/usage.py)."""
    if "usage_limit" not in values and "usage_rotate_fraction" not in values:
        return {}
    after = replace(key, usage_limit=values.get("usage_limit", key.usage_limit),
                    usage_rotate_fraction=values.get("usage_rotate_fraction",
                                                     key.usage_rotate_fraction))
    threshold = rotation_threshold(after)
    primary = key.version(key.primary_version)
    if (threshold is None or primary is None or primary.protect_count < threshold
            or effective_key_state(key, now) != KeyState.ACTIVE):
        return {}
    due = key.next_rotation_time
    return {"next_rotation_time": now if due is None or due > now else due,
            "rotation_reason": "usage"}
