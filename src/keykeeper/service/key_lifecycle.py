"""Lifecycle operations on a key, mixed into :class:`keykeeper.service.keys.KeyAdmin`:
PATCH of its lifecycle settings, activation of a pre-active key, and trimming old
versions (Vault transit's trim), each one transaction with a lifecycle event. The field
rules are in service/key_lifecycle_rules.py, the rules of use in domain/lifecycle.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from keykeeper.domain.keys import Key
from keykeeper.domain.lifecycle import (
    Periods,
    periods_for,
)
from keykeeper.domain.states import ERASED, KeyState, check_transition
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.context import RequestContext
from keykeeper.service.destruction import Destruction
from keykeeper.service.key_admin_base import KeyAdminBase
from keykeeper.service.key_args import (
    KMIP_LABEL_PREFIX,
    check_client_labels,
    check_description,
    check_labels,
    key_summary,
)
from keykeeper.service.key_lifecycle_rules import (
    LIFECYCLE_FIELDS,
    check_effective_periods,
    lifecycle_at_creation,
    lifecycle_changes,
    usage_due,
)

__all__ = ["LIFECYCLE_FIELDS", "KeyLifecycleMixin", "lifecycle_at_creation",
           "lifecycle_changes"]




class KeyLifecycleMixin(KeyAdminBase):
    """Update, activate and trim: mixed into KeyAdmin, whose collaborators it uses."""

    destruction: Destruction

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
        checked = check_client_labels(labels) if labels is not None else None
        changes = dict(lifecycle or {})
        current = self._authorized(ctx, ref, "key.update")
        ns_periods = self._lookup.namespace_periods(current.namespace)
        check_effective_periods(current, lifecycle_changes(current, changes, self._d.clock()),
                                 ns_periods)  # refuse early, before locking
        if checked is not None:
            # Labels scope grants: the caller must hold key.update on the key as it will be.
            self._authz.require_attributes(ctx, "key.update", current.namespace,
                                           current.name, checked)
        with self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, "key.update")
            check_transition("update", key.state)
            now = self._d.clock()
            lifecycle_values = lifecycle_changes(key, changes, now)
            check_effective_periods(key, lifecycle_values, ns_periods)
            values.update(lifecycle_values)
            values.update(usage_due(key, lifecycle_values, now))
            self._d.keys.update(conn, key.id, updated_at=now, **values)
            if checked is not None:
                # The labels given replace the caller's labels; the KMIP attributes stay.
                kept = {k: v for k, v in key.labels.items() if k.startswith(KMIP_LABEL_PREFIX)}
                self._d.keys.set_labels(conn, key.id, check_labels({**kept, **checked}))
            changed = sorted(set(values) | ({"labels"} if checked is not None else set()))
            to = str(values.get("state", key.state))
            self._d.keys.record_event(conn, key_id=key.id, action="update",
                                      from_state=str(key.state), to_state=to,
                                      principal=ctx.actor, at=now,
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
            if key.primary_version == 0:
                raise FailedPrecondition(f"key '{key.ref}' has no key material yet: import "
                                         "it first (origin 'external')")
            now = self._d.clock()
            self._d.keys.update(
                conn, key.id, state=str(KeyState.ACTIVE), activation_date=now, updated_at=now,
                next_rotation_time=(now + timedelta(seconds=key.rotation_period)
                                    if key.rotation_period else None))
            self._d.keys.record_event(conn, key_id=key.id, action="activate",
                                      from_state=str(key.state), to_state=str(KeyState.ACTIVE),
                                      principal=ctx.actor, at=now)
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
        # min_decryption_version 0 means every version still decrypts: nothing may go
        # until the floor is raised (Vault's rule: trim never removes a version that may
        # still decrypt).
        floor = key.min_decryption_version or 1
        if n > floor:
            raise InvalidArgument(
                f"min_available_version ({n}) must be at most the key's "
                f"min_decryption_version ({key.min_decryption_version}"
                + (", meaning every version decrypts" if not key.min_decryption_version
                   else "") + "): raise min_decryption_version first")
        if key.min_encryption_version and key.min_encryption_version < n:
            raise InvalidArgument(
                f"min_available_version ({n}) must be at most the key's "
                f"min_encryption_version ({key.min_encryption_version})")
        return [v.version for v in key.versions if v.version < n and v.state not in ERASED]

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
                    conn, key, numbers, requested_by=ctx.on_behalf_of or ctx.actor,
                    destroyed_by=ctx.actor, approval_id=ctx.approval_id, at=now)
                for e in erased:
                    before = key.version(e.version)
                    assert before is not None
                    self._d.keys.record_event(
                        conn, key_id=key.id, action="trim", from_state=str(before.state),
                        to_state=e.state, principal=ctx.actor, at=now, version=e.version,
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
