"""Lifecycle settings of a key: what key creation adds (activation and deactivation dates,
usage limits, crypto-period overrides, the namespace's default rotation period), PATCH of
those settings, activation of a pre-active key, and trimming old versions.

The rules of use are in domain/lifecycle.py; this module validates what a caller asks
for and persists it, each change one transaction with a lifecycle event. Mixed into
:class:`keykeeper.service.keys.KeyAdmin`.

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

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from keykeeper.domain.keys import Key
from keykeeper.domain.lifecycle import (
    Periods,
    default_usage_limit,
    effective_key_state,
    periods_for,
    validate_periods,
)
from keykeeper.domain.states import KeyState, VersionState, check_transition
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.destruction import Destruction
from keykeeper.service.identity_views import rfc3339
from keykeeper.service.key_args import (
    CreateKey,
    check_description,
    check_fraction,
    check_labels,
    check_period,
    check_rotation_period,
    check_time,
    check_usage_limit,
    key_summary,
)
from keykeeper.service.lookup import KeyLookup
from keykeeper.store.system import NamespaceRow

__all__ = ["LIFECYCLE_FIELDS", "KeyLifecycleMixin", "lifecycle_at_creation",
           "lifecycle_changes"]

LIFECYCLE_FIELDS = ("rotation_period", "next_rotation_time", "min_encryption_version",
                    "min_decryption_version", "usage_limit", "usage_rotate_fraction",
                    "originator_usage_period", "recipient_usage_period", "activation_date",
                    "deactivation_date")
_DESTROYED = (VersionState.DESTROYED, VersionState.DESTROYED_COMPROMISED)


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


def _who(ctx: RequestContext) -> str:
    return ctx.principal.name if ctx.principal else "system"


class KeyLifecycleMixin(ABC):
    """Update, activate and trim: mixed into KeyAdmin, whose collaborators it uses."""

    _d: Deps
    _lookup: KeyLookup
    _authz: Authorizer
    destruction: Destruction

    @abstractmethod
    def _authorized(self, ctx: RequestContext, ref: str, operation: str) -> Key: ...

    @abstractmethod
    def _locked(self, conn: Connection, ctx: RequestContext, ref: str,
                operation: str) -> Key: ...

    @abstractmethod
    def _reload(self, conn: Connection, key: Key) -> Key: ...

    @abstractmethod
    def _dual_control(self, ctx: RequestContext, operation: str, key: Key, summary: str,
                      **arguments: Any) -> None: ...

    def register_lifecycle_executors(self, register: Callable[[str, Callable[
            [RequestContext, dict[str, Any]], dict[str, Any]]], None]) -> None:
        """How an approved ``key.trim`` runs (as its requester)."""
        register("key.trim", lambda ctx, a: key_summary(
            self.trim(ctx, a["key"], a["min_available_version"])))

    def update(self, ctx: RequestContext, ref: str, *, description: str | None = None,
               labels: Mapping[str, str] | None = None,
               lifecycle: Mapping[str, Any] | None = None) -> Key:
        """PATCH: description, labels (replaced), and the lifecycle fields present in
        ``lifecycle`` (None clears one; see the module docstring). One transaction with an
        ``update`` event. InvalidArgument for a bad value, FailedPrecondition for a
        destroyed key or a date that may no longer change."""
        self._lookup.require_unsealed()
        values: dict[str, object] = {}
        if description is not None:
            values["description"] = check_description(description)
        checked = check_labels(labels) if labels is not None else None
        changes = dict(lifecycle or {})
        current = self._authorized(ctx, ref, "key.update")
        lifecycle_changes(current, changes, self._d.clock())  # refuse early, before locking
        if checked is not None:
            # Labels scope grants: the caller must hold key.update on the key as it will be.
            self._authz.require_attributes(ctx, "key.update", current.namespace,
                                           current.name, checked)
        with self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, "key.update")
            check_transition("update", key.state)
            now = self._d.clock()
            values.update(lifecycle_changes(key, changes, now))
            self._d.keys.update(conn, key.id, updated_at=now, **values)
            if checked is not None:
                self._d.keys.set_labels(conn, key.id, checked)
            changed = sorted(set(values) | ({"labels"} if checked is not None else set()))
            to = str(values.get("state", key.state))
            self._d.keys.record_event(conn, key_id=key.id, action="update",
                                      from_state=str(key.state), to_state=to,
                                      principal=_who(ctx), at=now,
                                      reason="changed: " + ", ".join(changed) if changed
                                      else None)
            result = self._reload(conn, key)
        self._lookup.forget(key)
        return result

    def activate(self, ctx: RequestContext, ref: str) -> Key:
        """KMIP Activate: a pre-active key becomes active now (its activation date is set
        to now; a rotation period then counts from now). FailedPrecondition in any other
        state."""
        self._lookup.require_unsealed()
        self._authorized(ctx, ref, "key.activate")
        with self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, "key.activate")
            if key.state != KeyState.PRE_ACTIVE:
                raise FailedPrecondition(f"cannot activate a key in state '{key.state}': "
                                         "only a pre-active key can be activated")
            now = self._d.clock()
            self._d.keys.update(
                conn, key.id, state=str(KeyState.ACTIVE), activation_date=now, updated_at=now,
                next_rotation_time=(now + timedelta(seconds=key.rotation_period)
                                    if key.rotation_period else None))
            self._d.keys.record_event(conn, key_id=key.id, action="activate",
                                      from_state=str(key.state), to_state=str(KeyState.ACTIVE),
                                      principal=_who(ctx), at=now)
            result = self._reload(conn, key)
        self._lookup.forget(key)
        return result

    @staticmethod
    def _check_trim(key: Key, n: int) -> list[int]:
        """Vault transit's trim rules; the versions below ``n`` that still hold material."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidArgument("min_available_version must be an integer of at least 1")
        if n > key.primary_version:
            raise InvalidArgument(f"min_available_version ({n}) must be at most the primary "
                                  f"version ({key.primary_version})")
        if key.min_decryption_version and n > key.min_decryption_version:
            raise InvalidArgument(
                f"min_available_version ({n}) must be at most the key's "
                f"min_decryption_version ({key.min_decryption_version}): raise that first")
        if key.min_encryption_version and key.min_encryption_version < n:
            raise InvalidArgument(
                f"min_available_version ({n}) must be at most the key's "
                f"min_encryption_version ({key.min_encryption_version})")
        return [v.version for v in key.versions if v.version < n and v.state not in _DESTROYED]

    def trim(self, ctx: RequestContext, ref: str, min_available_version: int) -> Key:
        """Crypto-erase every version below ``min_available_version`` in one transaction
        (material deleted, metadata kept, an event per version), as Vault's transit trim.
        Dual control by default (key.trim). InvalidArgument for a bound the rules refuse;
        FailedPrecondition for a key state that keeps versions (pre-active, destroyed)."""
        self._lookup.require_unsealed()
        current = self._authorized(ctx, ref, "key.trim")
        check_transition("destroy-version", current.state)
        self._check_trim(current, min_available_version)
        self._dual_control(ctx, "key.trim", current,
                           f"crypto-erase the versions of key {current.ref} below version "
                           f"{min_available_version}",
                           min_available_version=min_available_version)
        with self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, "key.trim")
            check_transition("destroy-version", key.state)
            now = self._d.clock()
            numbers = self._check_trim(key, min_available_version)
            if numbers:
                # The one erasure path: material deleted, checked gone, a signed receipt.
                erased = self.destruction.erase(
                    conn, key, numbers, requested_by=ctx.on_behalf_of or _who(ctx),
                    destroyed_by=_who(ctx), approval_id=ctx.approval_id, at=now)
                for e in erased:
                    before = key.version(e.version)
                    assert before is not None
                    self._d.keys.record_event(
                        conn, key_id=key.id, action="trim", from_state=str(before.state),
                        to_state=e.state, principal=_who(ctx), at=now, version=e.version,
                        reason=f"min_available_version {min_available_version}")
                self._d.keys.update(conn, key.id, updated_at=now)
            result = self._reload(conn, key)
        self._lookup.forget(key)
        if numbers:
            self.destruction.checkpoint()
        return result

    def periods_of(self, keys: Iterable[Key]) -> dict[str, Periods]:
        """Each key's effective crypto-period (its overrides, its namespace's, SP 800-57's),
        by key id, as the data plane decides with it (the namespace defaults are cached
        for the metadata TTL, 1 s)."""
        return {k.id: periods_for(k, *self._lookup.namespace_periods(k.namespace))
                for k in keys}
