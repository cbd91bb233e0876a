"""Key lifecycle: create, read, list, update, rotate, disable/enable, schedule and cancel
destruction, destroy a version (crypto-erasure), mark compromised.

Each mutating operation is one transaction that re-reads the key under a row lock
(``SELECT ... FOR UPDATE`` on PostgreSQL; the writer lock on SQLite), checks the
transition (domain/states.py), writes the change and a lifecycle event with its
time and principal, then drops cached metadata and handles of the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from keykeeper.crypto.spec import Purpose
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.names import parse_key_ref, validate_name
from keykeeper.domain.states import ERASED, KeyState, VersionState, check_transition
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.destruction import Destruction
from keykeeper.service.key_args import (
    PENDING_DAYS_DEFAULT,
    PENDING_DAYS_MAX,
    PENDING_DAYS_MIN,
    CreateKey,
    Gate,
    check_client_labels,
    check_text,
    check_time,
    key_summary,
)
from keykeeper.service.key_export import KeyExportMixin
from keykeeper.service.key_import import (
    KeyImportMixin,
    external_at_creation,
    refuse_external_rotation,
)
from keykeeper.service.key_lifecycle import KeyLifecycleMixin
from keykeeper.service.key_plan import plan_key
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.page_tokens import open_page_token, seal_page_token
from keykeeper.service.ratelimit import RateLimiter
from keykeeper.service.versions import (
    PreparedVersion,
    add_primary_version,
    discard_on_failure,
    new_version,
    prepare_first_version,
    prepare_version,
)
from keykeeper.store.keys import KeyFilter, NewVersion

__all__ = ["CreateKey", "Gate", "KeyAdmin", "key_summary"]

_LIST_READS = 20  # store reads per page at most when the caller's grants hide rows




class KeyAdmin(KeyLifecycleMixin, KeyImportMixin, KeyExportMixin):
    def __init__(self, deps: Deps, lookup: KeyLookup, authz: Authorizer,
                 limits: RateLimiter | None = None) -> None:
        self._d = deps
        self._lookup = lookup
        self._authz = authz
        self._limits = limits
        self.gate: Gate | None = None  # set by build_services once approvals exist
        # Erasure with signed receipts (service/destruction.py): versions and whole keys.
        self.destruction = Destruction(deps, lookup, authz)

    @staticmethod
    def _check_destroyable(key: Key, ref: str, version: int) -> KeyVersion:
        target = key.version(version)
        if target is None:
            raise NotFound(f"key '{ref}' has no version {version}")
        if target.state in ERASED:
            raise FailedPrecondition(f"key version {version} is already destroyed")
        if version == key.primary_version:
            raise FailedPrecondition(
                "cannot destroy the primary version; rotate first, or schedule the "
                "destruction of the whole key")
        return target

    def register_executors(self, register: Callable[[str, Callable[
            [RequestContext, dict[str, Any]], dict[str, Any]]], None]) -> None:
        """Tell the approvals service how to run each gated key operation once approved
        (as the requester, with ``ctx.approval_id`` set)."""
        register("key.destroy_version", lambda ctx, a: {
            "key": a["key"], "version": self.destroy_version(ctx, a["key"], a["version"]).version,
            "state": "destroyed"})
        register("key.schedule_destruction", lambda ctx, a: key_summary(
            self.schedule_destruction(ctx, a["key"], a["pending_days"])))
        register("key.compromise", lambda ctx, a: key_summary(
            self.compromise(ctx, a["key"], a["reason"],
                            compromise_time=_when(a.get("compromise_time")))))
        self.register_lifecycle_executors(register)
        self.register_export_executor(register)

    def _authorized(self, ctx: RequestContext, ref: str, operation: str) -> Key:
        """The key named by ``ref`` if the caller may run ``operation`` on it; NotFound if
        the caller may not see it, PermissionDenied if it may see but not act."""
        key = self._lookup.get(ctx, ref)
        self._authz.require_key(ctx, operation, key, ref)
        if self._limits is not None:
            self._limits.check_namespace(ctx.principal, key.namespace)
        return key

    def _dual_control(self, ctx: RequestContext, operation: str, key: Key, summary: str,
                      **arguments: Any) -> None:
        if self.gate is not None:
            self.gate(ctx, operation, {"key": key.id, **arguments}, summary=summary,
                      namespace=key.namespace, key_id=key.id)

    def _locked(self, conn: Connection, ctx: RequestContext, ref: str,
                operation: str) -> Key:
        """The key named by ``ref``, read and row-locked on the transaction's own connection
        (never a second pooled connection while this one is held: no pool deadlock)."""
        parsed = parse_key_ref(ref)
        if parsed.key_id is not None:
            locked = self._d.keys.get_by_id(conn, parsed.key_id, for_update=True)
        else:
            assert parsed.namespace is not None and parsed.name is not None
            locked = self._d.keys.get_by_name(conn, parsed.namespace, parsed.name,
                                              for_update=True)
        if locked is None:
            raise NotFound(f"key '{ref}' not found")
        ctx.namespace, ctx.key_id = locked.namespace, locked.id
        # Authorized again on the locked row: the check before the transaction may have
        # read metadata up to a second old (labels scope grants and may have changed).
        self._authz.require_key(ctx, operation, locked, ref)
        return locked

    def _reload(self, conn: Connection, key: Key) -> Key:
        fresh = self._d.keys.get_by_id(conn, key.id)
        assert fresh is not None
        return fresh

    def _transition(self, ctx: RequestContext, ref: str, action: str,
                    to: KeyState | Callable[[Key], KeyState], reason: str | None = None,
                    **values: object) -> Key:
        """One state change, decided on the locked row: ``to`` may be a function of it.
        The caller has authorized it (and passed dual control where that applies)."""
        self._lookup.require_unsealed()
        with self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, "key." + action.replace("-", "_"))
            check_transition(action, key.state)
            if callable(to):
                to = to(key)
            now = self._d.clock()
            self._d.keys.update(conn, key.id, state=str(to), updated_at=now, **values)
            self._d.keys.record_event(conn, key_id=key.id, action=action,
                                      from_state=str(key.state), to_state=str(to),
                                      principal=ctx.actor, at=now, reason=reason)
            result = self._reload(conn, key)
        self._lookup.forget(key)
        return result

    # -- operations -------------------------------------------------------------------------
    def create(self, ctx: RequestContext, args: CreateKey) -> Key:
        """Create a key with its first version. AlreadyExists if the name is taken in the
        namespace; NotFound for an unknown namespace; InvalidArgument for a refused algorithm."""
        self._lookup.require_unsealed()
        ctx.namespace = args.namespace
        check_client_labels(args.labels)  # kmip.* labels are written over KMIP only
        self._authz.require_create(ctx, args.namespace, args.name, args.labels)
        key, spec, ns = plan_key(self._d, ctx, args, namespace=self._lookup.namespace)
        now = key.created_at
        ctx.key_id = key.id
        first: NewVersion | None = None
        prepared = PreparedVersion(spec, (b"", None), ns.wrapped_kek)  # external: none
        if args.origin == "external":  # no version until material is imported (key_import)
            key = external_at_creation(key)
        else:
            prepared = prepare_first_version(self._d, key, spec, ns.wrapped_kek)
            first = new_version(self._d, prepared, key.id, key.namespace, 1)
        with discard_on_failure(self._d, prepared), self._d.transaction() as conn:
            self._d.keys.insert(conn, key, first)
            self._d.keys.record_event(conn, key_id=key.id, action="create", from_state=None,
                                      to_state=str(key.state), principal=ctx.actor,
                                      at=now, version=None if first is None else first.version)
            created = self._d.keys.as_inserted(key, first)  # as get_by_id reads it back
        ctx.key_version = None if first is None else first.version
        return created

    def get(self, ctx: RequestContext, ref: str, operation: str = "key.get") -> Key:
        key = self._authorized(ctx, ref, operation)
        with self._d.reading() as conn:
            fresh = self._d.keys.get_by_id(conn, key.id)
        if fresh is None:
            raise NotFound(f"key '{ref}' not found")
        return fresh

    def list_keys(self, ctx: RequestContext, flt: KeyFilter, page_size: int | None,
             page_token: str | None) -> tuple[list[Key], str | None]:
        size = 100 if page_size is None else page_size
        if not 1 <= size <= 1000:
            raise InvalidArgument("page_size must be between 1 and 1000")
        if flt.namespace is not None:
            validate_name(flt.namespace, "namespace")
            ctx.namespace = flt.namespace
        if flt.state is not None and flt.state not in {s.value for s in KeyState}:
            raise InvalidArgument(f"unknown state '{flt.state}'")
        if flt.purpose is not None and flt.purpose not in {p.value for p in Purpose}:
            raise InvalidArgument(f"unknown purpose '{flt.purpose}'")
        self._authz.require(ctx, "key.list")
        visible = self._authz.visible_namespaces(ctx)
        if visible is not None:
            flt = replace(flt, namespaces=frozenset(visible))
        keys: list[Key] = []
        token = open_page_token(self._d.custody, ctx.actor, page_token) if page_token else None
        # Keys outside the caller's grants are skipped as if they did not exist; a page may
        # take several reads to fill, and stops early (with a token) after a bounded number.
        # The store's token names the last key read, visible or not, so the caller gets it
        # only encrypted (and bound to the caller): it cannot read or forge one.
        with self._d.reading() as conn:
            for _ in range(_LIST_READS):
                page, token = self._d.keys.list_keys(conn, flt, size - len(keys), token)
                keys.extend(k for k in page if self._authz.can_see(ctx, k))
                if token is None or len(keys) >= size:
                    break
        return keys, (seal_page_token(self._d.custody, ctx.actor, token) if token else None)

    def rotate(self, ctx: RequestContext, ref: str) -> Key:
        """A new primary version (Vault computes, persists, and rolls back on failure: here the
        transaction does that)."""
        self._lookup.require_unsealed()
        current = self._authorized(ctx, ref, "key.rotate")
        refuse_external_rotation(current)
        check_transition("rotate", current.state)
        prepared = prepare_version(self._lookup, current)
        with discard_on_failure(self._d, prepared), self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, "key.rotate")
            check_transition("rotate", key.state)
            number = add_primary_version(self._d, conn, key, prepared, principal=ctx.actor,
                                         now=self._d.clock())
            result = self._reload(conn, key)
        ctx.key_version = number
        self._lookup.forget(key)
        return result

    def disable(self, ctx: RequestContext, ref: str) -> Key:
        self._authorized(ctx, ref, "key.disable")
        return self._transition(ctx, ref, "disable", KeyState.SUSPENDED)

    def enable(self, ctx: RequestContext, ref: str) -> Key:
        def target(key: Key) -> KeyState:
            if key.compromised_at is not None:
                raise FailedPrecondition("a compromised key cannot be enabled again")
            return KeyState.ACTIVE

        self._authorized(ctx, ref, "key.enable")
        return self._transition(ctx, ref, "enable", target)

    def schedule_destruction(self, ctx: RequestContext, ref: str,
                             pending_days: int | None) -> Key:
        days = PENDING_DAYS_DEFAULT if pending_days is None else pending_days
        if not PENDING_DAYS_MIN <= days <= PENDING_DAYS_MAX:
            raise InvalidArgument(
                f"pending_days must be between {PENDING_DAYS_MIN} and {PENDING_DAYS_MAX}")
        key = self._authorized(ctx, ref, "key.schedule_destruction")
        check_transition("schedule-destruction", key.state)
        self._dual_control(ctx, "key.schedule_destruction", key,
                           f"schedule the destruction of key {key.ref} in {days} days",
                           pending_days=days)
        when = self._d.clock() + timedelta(days=days)
        return self._transition(ctx, ref, "schedule-destruction", KeyState.PENDING_DESTRUCTION,
                                destruction_time=when)

    def cancel_destruction(self, ctx: RequestContext, ref: str) -> Key:
        self._authorized(ctx, ref, "key.cancel_destruction")
        return self._transition(
            ctx, ref, "cancel-destruction",
            lambda key: KeyState.COMPROMISED if key.compromised_at else KeyState.SUSPENDED,
            destruction_time=None)

    def compromise(self, ctx: RequestContext, ref: str, reason: str, *,
                   compromise_time: datetime | None = None) -> Key:
        """Mark the key and its usable versions compromised. ``compromise_time``: when
        the compromise happened (KMIP 2.1 Compromise Occurrence Date), not in the future;
        default now. InvalidArgument for a bad reason or time."""
        check_compromise(reason, compromise_time, self._d.clock())
        self._lookup.require_unsealed()
        current = self._authorized(ctx, ref, "key.compromise")
        check_transition("compromise", current.state)
        if compromise_time is not None and compromise_time < current.created_at:
            raise InvalidArgument("compromise_time must not be before the key was created "
                                  f"({current.created_at.isoformat()})")
        extra = ({"compromise_time": compromise_time.isoformat()}
                 if compromise_time is not None else {})
        self._dual_control(ctx, "key.compromise", current,
                           f"mark key {current.ref} compromised: {reason}", reason=reason,
                           **extra)
        return self.mark_compromised(ctx, ref, reason, compromise_time)

    def mark_compromised(self, ctx: RequestContext, ref: str, reason: str,
                         compromise_time: datetime | None,
                         operation: str = "key.compromise") -> Key:
        """The transaction of :meth:`compromise`, for a caller that has authorized and
        gated it (a bulk revocation passes ``operation="key.bulk_revoke"``)."""
        with self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, operation)
            check_transition("compromise", key.state)
            now = self._d.clock()
            happened = compromise_time or now
            # A key already pending destruction stays pending: compromise never delays a
            # destruction; it will end as destroyed-compromised.
            to = (KeyState.PENDING_DESTRUCTION if key.state == KeyState.PENDING_DESTRUCTION
                  else KeyState.COMPROMISED)
            self._d.keys.update(conn, key.id, state=str(to), updated_at=now,
                                compromised_at=happened, compromise_reason=reason)
            for v in key.versions:
                if v.state in (VersionState.ACTIVE, VersionState.SUSPENDED,
                               VersionState.DEACTIVATED):
                    self._d.keys.update_version(conn, key.id, v.version,
                                                state=str(VersionState.COMPROMISED),
                                                compromised_at=happened,
                                                compromise_reason=reason)
            self._d.keys.record_event(conn, key_id=key.id, action="compromise",
                                      from_state=str(key.state), to_state=str(to),
                                      principal=ctx.actor, at=now, reason=reason)
            result = self._reload(conn, key)
        self._lookup.forget(key)
        return result

    def destroy_version(self, ctx: RequestContext, ref: str, version: int) -> KeyVersion:
        """Crypto-erase one version now: its wrapped material is deleted, metadata kept.
        FailedPrecondition for the primary version in any state (rotate first), so that an
        enabled key always has a usable primary version."""
        self._lookup.require_unsealed()
        ctx.key_version = version
        current = self._authorized(ctx, ref, "key.destroy_version")
        check_transition("destroy-version", current.state)
        # Checked before approval too: a request that could never run is refused at once.
        self._check_destroyable(current, ref, version)
        self._dual_control(ctx, "key.destroy_version", current,
                           f"destroy version {version} of key {current.ref}", version=version)
        with self._d.transaction() as conn:
            key = self._locked(conn, ctx, ref, "key.destroy_version")
            check_transition("destroy-version", key.state)
            target = self._check_destroyable(key, ref, version)
            now = self._d.clock()
            to = VersionState(self.destruction.erase(
                conn, key, (version,), requested_by=ctx.on_behalf_of or ctx.actor,
                destroyed_by=ctx.actor, approval_id=ctx.approval_id, at=now)[0].state)
            self._d.keys.record_event(conn, key_id=key.id, action="destroy-version",
                                      from_state=str(target.state), to_state=str(to),
                                      principal=ctx.actor, at=now, version=version)
        self._lookup.forget(key)
        self.destruction.checkpoint()
        return replace(target, state=to, destroyed_at=now)

    def destroy_due(self, principal: str = "scheduler") -> int:
        """Crypto-erase every key whose destruction time has passed (now, by the injected
        clock); returns how many. Delegates to :meth:`Destruction.destroy_due`, which
        the scheduler calls directly for ``(done, failed)``."""
        return self.destruction.destroy_due(self._d.clock(), principal)[0]



def check_compromise(reason: str, compromise_time: datetime | None, now: datetime) -> None:
    """InvalidArgument unless ``reason`` is 1..1024 printable characters and
    ``compromise_time`` (if given) carries a time zone and is not in the future."""
    if not reason.strip() or len(reason) > 1024:
        raise InvalidArgument("reason is required (1 to 1024 characters)")
    check_text(reason, "reason")
    if compromise_time is not None:
        check_time(compromise_time, "compromise_time")   # a zone, 1970 .. 9000
        if compromise_time > now:
            raise InvalidArgument("compromise_time must not be in the future")


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
