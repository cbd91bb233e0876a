"""Finding keys by reference, with a short-lived metadata cache.

Key metadata is cached for ``ttl`` seconds (1 s by default): a state change that
forbids use (disable, compromise, destroy) made on another node takes effect
here within that time (DESIGN.md, Storage and scale). Changes made through this
process drop the entry at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from keykeeper.crypto import KeyHandle, load_public
from keykeeper.crypto.public_only import PublicOnlyKeyHandle
from keykeeper.crypto.registry import get_spec
from keykeeper.custody.cache import TTLCache
from keykeeper.custody.hsm.token import Token
from keykeeper.custody.keyring import WrappedVersion
from keykeeper.domain.keys import Key
from keykeeper.domain.names import KeyRef, parse_key_ref
from keykeeper.errors import FailedPrecondition, NotFound, Sealed
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.store.system import NamespaceRow

__all__ = ["KeyLookup"]


class KeyLookup:
    def __init__(self, deps: Deps, ttl: float = 1.0) -> None:
        self._d = deps
        self._cache: TTLCache[str, Key] = TTLCache(50_000, ttl)
        self._keks: dict[str, bytes] = {}
        # Namespace crypto-period defaults (originator, recipient seconds), same TTL:
        self._periods: TTLCache[str, tuple[int | None, int | None]] = TTLCache(10_000, ttl)
        # Live namespace rows for creates (algorithm policy, lifecycle defaults, KEK):
        self._namespaces: TTLCache[str, NamespaceRow] = TTLCache(10_000, ttl)
        self._epoch = 0  # moves on every local change (see get)

    def cache_stats(self) -> tuple[int, int]:
        """Metadata cache (hits, misses) since start, for keykeeper_cache_requests_total."""
        return self._cache.hits, self._cache.misses

    def require_unsealed(self) -> None:
        if self._d.custody.sealed:
            raise Sealed("keykeeper is sealed")

    def get(self, ctx: RequestContext, ref: str) -> Key:
        """The key named by ``ref`` (id, ``namespace:name`` or ``name``); NotFound if none.

        Records the key in ``ctx`` for the audit record.
        """
        key = self._cache.get(ref)
        if key is None:
            parsed = parse_key_ref(ref)
            epoch = self._epoch
            with self._d.reading() as conn:
                found = self._fetch(conn, parsed)
            if found is None:
                raise NotFound(f"key '{ref}' not found")
            key = found
            # Kept unless a local change raced this read, or an all-or-nothing batch may
            # still roll back what it read.
            if epoch == self._epoch and not self._d.in_batch():
                self._cache.put(ref, key)
        ctx.namespace, ctx.key_id = key.namespace, key.id
        return key

    def _fetch(self, conn: Connection, parsed: KeyRef) -> Key | None:
        if parsed.key_id is not None:
            return self._d.keys.get_by_id(conn, parsed.key_id)
        assert parsed.namespace is not None and parsed.name is not None
        return self._d.keys.get_by_name(conn, parsed.namespace, parsed.name)

    def forget(self, key: Key) -> None:
        """Drop cached metadata and handles of ``key`` after a change made here."""
        self._epoch += 1
        self._cache.drop_where(lambda r: r in (key.id, key.ref, key.name))
        self._d.custody.drop_key(key.id)
        # A change in an all-or-nothing batch: forget again once it ends, committed (another
        # request may have cached the old state meanwhile) or rolled back (handles of a
        # version made by a rolled-back Re-Key must not outlive it).
        if self._d.in_batch():
            self._d.on_rollback(lambda: self.forget(key))
            self._d.after_commit(lambda: self.forget(key))

    def forget_all(self) -> None:
        """Drop all cached key metadata and namespace periods and rows (after a restore
        replaced the key domain); KEKs and handles are dropped per namespace by the
        caller."""
        self._epoch += 1
        self._cache.clear()
        self._periods.clear()
        self._namespaces.clear()

    def namespace(self, name: str) -> NamespaceRow | None:
        """The live namespace ``name`` (None: unknown or deleted), read at most the
        metadata TTL ago (1 s), as roles and grants are: what a create decides from it
        (algorithm policy, lifecycle defaults, the KEK to wrap under). A namespace deleted
        meanwhile on another node still refuses the key: the insert share-locks its row
        (store/keys.py ``insert``). Changes made on this node are seen at once
        (:meth:`namespace_changed`, :meth:`forget_namespace`); an unknown name is not
        remembered, so a namespace made anywhere is usable at once."""
        row = self._namespaces.get(name)
        if row is None:
            epoch = self._epoch
            with self._d.reading() as conn:
                row = self._d.system.get_namespace(conn, name)
            if row is not None and epoch == self._epoch and not self._d.in_batch():
                self._namespaces.put(name, row)
        return row

    def namespace_changed(self, name: str) -> None:
        """Forget what is cached of namespace ``name``'s settings after a change here."""
        self._epoch += 1   # a read that raced the change is not cached (namespace())
        self._namespaces.drop_where(lambda n: n == name)
        self._periods.drop_where(lambda n: n == name)

    def forget_namespace(self, namespace: str, key_ids: Iterable[str] = ()) -> None:
        """Drop everything held for a deleted (crypto-erased) namespace: its wrapped KEK,
        the metadata and loaded handles of its keys, and custody's unwrapped KEK."""
        ids = frozenset(key_ids)
        prefix = namespace + ":"
        self._epoch += 1
        self._keks.pop(namespace, None)
        self._namespaces.drop_where(lambda n: n == namespace)
        self._cache.drop_where(lambda r: r in ids or r.startswith(prefix))
        for key_id in ids:
            self._d.custody.drop_key(key_id)
        self._d.custody.forget_namespace(namespace)

    def root_changed(self) -> None:
        """Drop every wrapped KEK and namespace row read so far: a root rekey rewraps every
        KEK (service/rekey.py), and bytes wrapped by a root custody no longer holds (after
        a seal and unseal, or a switch between HSM keys) would fail to unwrap. Called when
        a rekey commits here, when this node follows one made elsewhere and at unseal
        (service/system.py)."""
        self._epoch += 1
        self._keks.clear()
        self._namespaces.clear()

    def wrapped_kek(self, namespace: str) -> bytes:
        """The KEK of ``namespace`` as the store holds it, wrapped by the root (cached
        until :meth:`root_changed` or :meth:`forget_namespace`). NotFound if none."""
        kek = self._keks.get(namespace)
        if kek is None:
            epoch = self._epoch
            with self._d.reading() as conn:
                row = self._d.system.get_namespace(conn, namespace)
            if row is None:
                raise NotFound(f"namespace '{namespace}' not found")
            kek = row.wrapped_kek
            if epoch == self._epoch:  # not read across a root change
                self._keks[namespace] = kek
        return kek

    def namespace_periods(self, namespace: str) -> tuple[int | None, int | None]:
        """The namespace's crypto-period defaults, seconds: (originator_usage_period,
        recipient_usage_period), None where unset (domain/lifecycle.py periods_for)."""
        found = self._periods.get(namespace)
        if found is None:
            with self._d.reading() as conn:
                row = self._d.system.get_namespace(conn, namespace, include_deleted=True)
            found = (None, None) if row is None else (row.originator_usage_period,
                                                      row.recipient_usage_period)
            self._periods.put(namespace, found)
        return found

    @property
    def hsm(self) -> Token | None:
        """The configured PKCS#11 token (custody/hsm/), or None."""
        return self._d.custody.hsm

    def handle(self, key: Key, version: int) -> KeyHandle:
        """The loaded handle of one version; reads the store only on a cache miss. A
        version imported as a public key alone gets a public-only handle (its private
        operations raise FailedPrecondition)."""
        meta = key.version(version)
        if meta is not None and meta.public_only and meta.public_key_pem is not None:
            self.require_unsealed()
            return PublicOnlyKeyHandle(load_public(get_spec(key.algorithm),
                                                   meta.public_key_pem.encode("ascii")))

        def load() -> WrappedVersion:
            with self._d.reading() as conn:
                blob = self._d.keys.wrapped_material(conn, key.id, version)
                hsm_id = (self._d.keys.hsm_key_id(conn, key.id, version)
                          if blob is None else None)
            if hsm_id is not None:  # protection "hsm": the key is in the PKCS#11 token
                v = key.version(version)
                return WrappedVersion(namespace=key.namespace, wrapped_kek=b"",
                                      algorithm=key.algorithm, wrapped_material=b"",
                                      hsm_key_id=hsm_id,
                                      public_key_pem=v.public_key_pem if v else None)
            if blob is None:  # destroyed since the (cached) metadata was read
                raise FailedPrecondition(f"key version {version} has been destroyed")
            return WrappedVersion(namespace=key.namespace, wrapped_kek=self.wrapped_kek(
                key.namespace), algorithm=key.algorithm, wrapped_material=blob)

        if self._d.in_batch():  # a key made in the batch may be rolled back: its handle too
            self._d.on_rollback(lambda: self._d.custody.drop_key(key.id))
        return self._d.custody.handle(key.id, version, load)
