"""Namespaces: segmentation boundaries with their own KEK, algorithm policy and rate limit.

Deleting a namespace (under dual control by default) is **crypto-erasure**: in one
transaction every key version of the namespace loses its wrapped material, every key
becomes destroyed (with a lifecycle event), and the namespace KEK is replaced by empty
bytes, so nothing ever wrapped under it can be unwrapped again, from this store or from
a copy of it taken later. The row stays with ``deleted_at`` set: the name is never reused,
and a deleted namespace and every key in it answer ``not_found``.

Caches: this process drops everything it holds for the namespace at once (the wrapped
KEK, key metadata, loaded key handles and custody's unwrapped KEK). Every other node
stops using it within the key metadata TTL (1 s): the store hides keys of deleted
namespaces from every read, and the material is gone from it. :meth:`forget_deleted`,
run each second by the server's sweeper, then drops the other nodes' in-memory copies.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keykeeper.domain.lifecycle import validate_periods
from keykeeper.domain.names import DEFAULT_NAMESPACE, validate_name
from keykeeper.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from keykeeper.service.approvals import Approvals
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.erasure import checkpoint_after_erasure, destroy_in_hsm
from keykeeper.service.identity_views import rfc3339
from keykeeper.service.key_args import check_period, check_rotation_period
from keykeeper.service.lookup import KeyLookup
from keykeeper.store.namespaces import NamespaceRepository
from keykeeper.store.system import NamespaceRow

__all__ = ["UNSET", "Erasure", "Namespace", "NamespaceAdmin"]

log = logging.getLogger("keykeeper.namespaces")

MAX_DESCRIPTION = 1024
MAX_RATE_LIMIT = 1_000_000.0


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave as it is" in update (None clears the rate limit)


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace as callers see it (never its KEK)."""

    name: str
    description: str
    allow_legacy_rsa_2048: bool
    rate_limit: float | None
    created_by: str
    created_at: datetime
    keys: int | None = None
    # Lifecycle defaults, seconds (None: none / SP 800-57 Part 1 Table 1's): the rotation
    # period a key created here takes when it names none, and the crypto-period of every
    # key here that has no override of its own (effective at once).
    rotation_period: int | None = None
    originator_usage_period: int | None = None
    recipient_usage_period: int | None = None


LIFECYCLE_DEFAULTS = ("rotation_period", "originator_usage_period", "recipient_usage_period")


@dataclass(frozen=True, slots=True)
class Erasure:
    """The answer of a namespace deletion."""

    name: str
    deleted_at: datetime
    keys_destroyed: int
    versions_destroyed: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "deleted_at": rfc3339(self.deleted_at),
                "keys_destroyed": self.keys_destroyed,
                "versions_destroyed": self.versions_destroyed}


def _view(row: NamespaceRow, keys: int | None = None) -> Namespace:
    return Namespace(name=row.name, description=row.description,
                     allow_legacy_rsa_2048=row.allow_legacy_rsa_2048, rate_limit=row.rate_limit,
                     created_by=row.created_by, created_at=row.created_at, keys=keys,
                     rotation_period=row.rotation_period,
                     originator_usage_period=row.originator_usage_period,
                     recipient_usage_period=row.recipient_usage_period)


def _lifecycle(values: dict[str, Any], row: NamespaceRow | None = None) -> dict[str, Any]:
    """Checked lifecycle defaults among ``values`` (None clears one): a rotation period of
    at least 1 hour, crypto-periods of at least 1 hour with RUP >= OUP (SP 800-57 §5.3)."""
    out: dict[str, Any] = {}
    for what in LIFECYCLE_DEFAULTS:
        if what in values and values[what] is not UNSET:
            raw = values[what]
            out[what] = (None if raw is None else check_rotation_period(raw)
                         if what == "rotation_period" else check_period(raw, what))
    if "originator_usage_period" in out or "recipient_usage_period" in out:
        validate_periods(
            out.get("originator_usage_period", row.originator_usage_period if row else None),
            out.get("recipient_usage_period", row.recipient_usage_period if row else None))
    return out


def _description(text: str | None) -> str:
    text = text or ""
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description is at most {MAX_DESCRIPTION} characters")
    if "\x00" in text:
        raise InvalidArgument("description must not contain NUL characters")
    return text


def _rate_limit(value: float | None) -> float | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not 0 < value <= MAX_RATE_LIMIT):
        raise InvalidArgument("rate_limit must be a number of requests per second above 0 and "
                              f"at most {MAX_RATE_LIMIT:g} (or null for none)")
    return float(value)


class NamespaceAdmin:
    def __init__(self, deps: Deps, lookup: KeyLookup, authz: Authorizer,
                 approvals: Approvals) -> None:
        self._d = deps
        self._lookup = lookup
        self._authz = authz
        self._approvals = approvals
        self._repo = NamespaceRepository()
        self._forgotten: set[str] = set()
        self._lock = threading.Lock()

    # -- reads ----------------------------------------------------------------------------
    def _row(self, name: str) -> NamespaceRow:
        validate_name(name, "namespace name")
        with self._d.reading() as conn:
            row = self._d.system.get_namespace(conn, name)
        if row is None:
            raise NotFound(f"namespace '{name}' not found")
        return row

    def get(self, ctx: RequestContext, name: str) -> Namespace:
        self._authz.require(ctx, "namespace.get")
        ctx.namespace = name
        row = self._row(name)
        with self._d.reading() as conn:
            count = self._repo.count_keys(conn, name)
        return _view(row, count)

    def list_namespaces(self, ctx: RequestContext) -> list[Namespace]:
        self._authz.require(ctx, "namespace.list")
        with self._d.reading() as conn:
            return [_view(r) for r in self._repo.list_namespaces(conn)]

    # -- changes --------------------------------------------------------------------------
    def create(self, ctx: RequestContext, name: str, *, description: str | None = None,
               allow_legacy_rsa_2048: bool = False,
               rate_limit: float | None = None, rotation_period: int | str | None = None,
               originator_usage_period: int | str | None = None,
               recipient_usage_period: int | str | None = None) -> Namespace:
        """A namespace with a fresh KEK. AlreadyExists if the name is or was in use;
        InvalidArgument for a bad lifecycle default (durations: seconds or "90d")."""
        self._authz.require(ctx, "namespace.create")
        validate_name(name, "namespace name")
        ctx.namespace = name
        lifecycle = _lifecycle({"rotation_period": rotation_period,
                                "originator_usage_period": originator_usage_period,
                                "recipient_usage_period": recipient_usage_period})
        row = NamespaceRow(name=name, wrapped_kek=b"", allow_legacy_rsa_2048=bool(
            allow_legacy_rsa_2048), created_at=self._d.clock(),
            description=_description(description), rate_limit=_rate_limit(rate_limit),
            created_by=ctx.principal.name if ctx.principal else "")
        self._lookup.require_unsealed()
        wrapped = self._d.custody.new_wrapped_kek(name)
        with self._d.transaction() as conn:
            existing = self._d.system.get_namespace(conn, name, include_deleted=True)
            if existing is not None:
                raise AlreadyExists(
                    f"namespace '{name}' already exists" if existing.deleted_at is None else
                    f"namespace '{name}' was deleted; a namespace name is never reused")
            self._d.system.insert_namespace(conn, NamespaceRow(
                name=row.name, wrapped_kek=wrapped,
                allow_legacy_rsa_2048=row.allow_legacy_rsa_2048, created_at=row.created_at,
                description=row.description, rate_limit=row.rate_limit,
                created_by=row.created_by))
            if any(v is not None for v in lifecycle.values()):
                self._repo.update(conn, name, **lifecycle)
            stored = self._d.system.get_namespace(conn, name)
        assert stored is not None
        return _view(stored, 0)

    def update(self, ctx: RequestContext, name: str, *, description: str | None = None,
               allow_legacy_rsa_2048: bool | None = None, rate_limit: Any = UNSET,
               rotation_period: Any = UNSET, originator_usage_period: Any = UNSET,
               recipient_usage_period: Any = UNSET) -> Namespace:
        """Change the description, the legacy RSA-2048 policy, the rate limit or a
        lifecycle default (None removes it; UNSET leaves it). A new rotation period applies
        to keys created afterwards; crypto-periods apply at once to every key here without
        its own."""
        self._authz.require(ctx, "namespace.update")
        validate_name(name, "namespace name")
        ctx.namespace = name
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = _description(description)
        if allow_legacy_rsa_2048 is not None:
            values["allow_legacy_rsa_2048"] = bool(allow_legacy_rsa_2048)
        if rate_limit is not UNSET:
            values["rate_limit"] = _rate_limit(rate_limit)
        lifecycle = {"rotation_period": rotation_period,
                     "originator_usage_period": originator_usage_period,
                     "recipient_usage_period": recipient_usage_period}
        _lifecycle(lifecycle)  # refuse a bad value before locking
        with self._d.transaction() as conn:
            locked = self._repo.get_for_update(conn, name)
            if locked is None:
                raise NotFound(f"namespace '{name}' not found")
            values.update(_lifecycle(lifecycle, locked))
            if values:
                self._repo.update(conn, name, **values)
            row = self._d.system.get_namespace(conn, name)
            count = self._repo.count_keys(conn, name)
        self._lookup.namespace_changed(name)   # creates here see the change at once
        assert row is not None
        return _view(row, count)

    def delete(self, ctx: RequestContext, name: str) -> Erasure:
        """Crypto-erase the namespace and every key in it (dual control by default).
        FailedPrecondition for ``default``; NotFound for an unknown or deleted one."""
        self._authz.require(ctx, "namespace.delete")
        validate_name(name, "namespace name")
        ctx.namespace = name
        if name == DEFAULT_NAMESPACE:
            raise FailedPrecondition("the default namespace cannot be deleted")
        self._row(name)
        with self._d.reading() as conn:
            count = self._repo.count_keys(conn, name)
        self._approvals.gate(ctx, "namespace.delete", {"namespace": name}, namespace=name,
                             summary=f"delete namespace '{name}': crypto-erase its KEK and "
                                     f"its {count} key(s)")
        self._lookup.require_unsealed()
        now = self._d.clock()
        who = ctx.actor
        with self._d.transaction() as conn:
            if self._repo.get_for_update(conn, name) is None:
                raise NotFound(f"namespace '{name}' not found")
            erased = self._repo.erase(conn, name, principal=who, at=now)
            # HSM-protected versions: C_DestroyObject as the transaction's last step, so a
            # token failure rolls the erasure back (service/erasure.py).
            destroy_in_hsm(self._d, list(erased.hsm_key_ids))
        self._forget(name, erased.key_ids)
        checkpoint_after_erasure(self._d, f"namespace {name}")
        log.warning("namespace %s deleted by %s: %d key(s), %d version(s) crypto-erased", name,
                    who, erased.keys_destroyed, erased.versions_destroyed)
        return Erasure(name=name, deleted_at=now, keys_destroyed=erased.keys_destroyed,
                       versions_destroyed=erased.versions_destroyed)

    def execute_delete(self, ctx: RequestContext, arguments: dict[str, Any]) -> dict[str, Any]:
        """Executor of an approved ``namespace.delete``."""
        return self.delete(ctx, str(arguments["namespace"])).to_json()

    # -- caches ---------------------------------------------------------------------------
    def _forget(self, name: str, key_ids: tuple[str, ...] | list[str]) -> None:
        self._lookup.forget_namespace(name, key_ids)
        with self._lock:
            self._forgotten.add(name)

    def forget_deleted(self) -> int:
        """Drop this process's cached KEKs, key metadata and key handles of namespaces
        deleted on any node; returns how many namespaces were newly forgotten."""
        if self._d.custody.sealed:
            return 0  # sealing dropped every KEK and handle already
        try:
            with self._d.reading() as conn:
                names = [n for n in self._repo.deleted_names(conn)
                         if n not in self._forgotten]
                ids = {n: self._repo.key_ids(conn, n) for n in names}
        except Unavailable:
            return 0  # the store is down: nothing can load new handles either
        for name in names:
            self._forget(name, ids[name])
        return len(names)
