"""The one place that decides who may do what (DESIGN.md: service/ authorizes).

Roles and grants are read from the store into a :class:`PolicySnapshot` that is kept for
``ttl`` seconds (1 s by default), so a change made on any node takes effect everywhere
within that time and the hot path reads no storage. Changes made through this process
take effect at once (:meth:`Authorizer.invalidate`).

Errors: :class:`Unauthenticated` without a principal; :class:`PermissionDenied` naming
the missing permission; :class:`NotFound` (the very answer a missing key gets) for a key
outside the caller's scope, so a caller never learns that it exists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from keykeeper.authz.model import Principal
from keykeeper.authz.policy import Access, KeyAttributes, PolicySnapshot
from keykeeper.domain.keys import Key
from keykeeper.errors import NotFound, PermissionDenied, Unauthenticated
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps

__all__ = ["Authorizer", "attributes"]

_MEMO_ENTRIES = 100_000


def attributes(key: Key) -> KeyAttributes:
    return KeyAttributes(namespace=key.namespace, name=key.name, labels=key.labels)


def _who(ctx: RequestContext) -> Principal:
    if ctx.principal is None:
        raise Unauthenticated("missing or invalid token")
    return ctx.principal


class Authorizer:
    def __init__(self, deps: Deps, ttl: float = 1.0) -> None:
        self._d = deps
        self._ttl = ttl
        self._snapshot: PolicySnapshot | None = None
        self._loaded_at = 0.0
        self._epoch = 0
        self._lock = threading.Lock()

    # -- the policy -----------------------------------------------------------------------
    def snapshot(self) -> PolicySnapshot:
        snap, now = self._snapshot, time.monotonic()
        if snap is not None and now - self._loaded_at < self._ttl:
            return snap
        with self._lock:
            if self._snapshot is not None and time.monotonic() - self._loaded_at < self._ttl:
                return self._snapshot
            epoch = self._epoch
            with self._d.reading() as conn:
                fresh = PolicySnapshot(self._d.identity.list_roles(conn),
                                       self._d.identity.list_grants(conn))
            if epoch == self._epoch:
                self._snapshot, self._loaded_at = fresh, time.monotonic()
            return fresh

    def invalidate(self) -> None:
        """Forget the snapshot after a change to roles or grants made here."""
        with self._lock:
            self._epoch += 1
            self._snapshot = None

    # -- decisions ------------------------------------------------------------------------
    def allowed(self, ctx: RequestContext, operation: str) -> bool:
        return self.snapshot().permits_system(_who(ctx), operation)

    def require(self, ctx: RequestContext, operation: str) -> Principal:
        """Allow a system operation (governed by role alone) or raise PermissionDenied."""
        who = _who(ctx)
        if not self.snapshot().permits_system(who, operation):
            raise PermissionDenied(f"permission denied: '{who.name}' lacks '{operation}'")
        return who

    def key_access(self, ctx: RequestContext, operation: str, key: Key,
                   ref: str | None = None) -> Access:
        """The caller's access to ``key`` for ``operation``. Raises NotFound when the key is
        outside everything the caller was granted, PermissionDenied when the caller sees
        the key but lacks ``operation`` on it. A conditional grant answers an Access whose
        ``permits(context, principal)`` must be checked per request (see :meth:`check`)."""
        who = _who(ctx)
        snap = self.snapshot()
        memo_key = (who.name, who.roles, who.disabled, operation, key.id, key.updated_at)
        access = snap.memo.get(memo_key)
        if access is None:
            access = snap.key_access(who, operation, attributes(key))
            if len(snap.memo) < _MEMO_ENTRIES:
                snap.memo[memo_key] = access
        if access.allowed:
            return access
        attrs = attributes(key)
        if not snap.can_see(who, attrs):
            raise NotFound(f"key '{ref or key.id}' not found")
        raise PermissionDenied(f"permission denied: '{who.name}' lacks '{operation}' on key "
                               f"'{key.ref}'")

    def require_key(self, ctx: RequestContext, operation: str, key: Key,
                    ref: str | None = None, context: Mapping[str, str] | None = None) -> None:
        """:meth:`key_access` and, for a conditional grant, its condition on ``context``.
        ``ref`` is the reference the caller sent (named in a not-found answer)."""
        access = self.key_access(ctx, operation, key, ref)
        self.check(ctx, access, operation, key, context)

    def check(self, ctx: RequestContext, access: Access, operation: str, key: Key,
              context: Mapping[str, str] | None) -> None:
        if access.conditions and not access.permits(context, _who(ctx)):
            named = " or ".join(f"'{c}'" for c in access.conditions[:3])
            raise PermissionDenied(
                f"permission denied: '{_who(ctx).name}' may run '{operation}' on key "
                f"'{key.ref}' only when its grant's condition holds for the encryption "
                f"context: {named}")

    def require_create(self, ctx: RequestContext, namespace: str, name: str,
                       labels: Mapping[str, str]) -> None:
        self.require_attributes(ctx, "key.create", namespace, name, labels)

    def require_attributes(self, ctx: RequestContext, operation: str, namespace: str,
                           name: str, labels: Mapping[str, str]) -> None:
        """Allow ``operation`` on a key that would have these attributes (a key being
        created, or relabelled: a caller may not move a key out of, or into, a scope its
        grants do not cover); else PermissionDenied."""
        who = _who(ctx)
        access = self.snapshot().key_access(who, operation,
                                            KeyAttributes(namespace, name, labels))
        # These operations take no encryption context: a conditional grant allows them only
        # if its condition holds without one (it reads principal.* alone).
        if not access.permits(None, who):
            what = "with these labels" if operation != "key.create" else ""
            raise PermissionDenied(f"permission denied: '{who.name}' lacks '{operation}' for "
                                   f"'{namespace}:{name}' {what}".rstrip())

    def can_see(self, ctx: RequestContext, key: Key) -> bool:
        return self.snapshot().can_see(_who(ctx), attributes(key))

    def visible_namespaces(self, ctx: RequestContext) -> set[str] | None:
        return self.snapshot().namespaces_visible(_who(ctx))

