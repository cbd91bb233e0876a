"""Crypto-erasure with signed receipts: scheduled destruction of whole keys, and the one
code path that erases versions (``POST .../versions/{v}/destroy`` uses it too).

Erasing sets every chosen version's ``wrapped_material`` to NULL, moves it to
``destroyed`` (``destroyed-compromised`` if it was compromised), keeps all metadata as a
tombstone, confirms in the same transaction that no erased row still holds material,
and stores a signed receipt (service/receipts.py) in ``destruction_receipts``: the
erasure and its receipt commit together or not at all. An HSM-protected version's token
object is destroyed (``C_DestroyObject``) as the transaction's last step, and its receipt
entry names the SHA-256 of its ``CKA_ID`` instead of a wrapped blob. After an erasure the SQLite
write-ahead log is checkpointed and truncated, so no pre-erasure page image survives
in it (``secure_delete`` zeroes freed space in the database file).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from keykeeper.custody.hsm.keys import sha256_of_id
from keykeeper.domain.keys import Key
from keykeeper.domain.states import ERASED, KeyState, VersionState
from keykeeper.errors import Internal
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.erasure import checkpoint_after_erasure, destroy_in_hsm
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.receipts import ErasedVersion, ReceiptSigner
from keykeeper.service.rotation import KeyAudit, error_code
from keykeeper.store.receipts import ReceiptRepository

__all__ = ["Destruction"]

log = logging.getLogger("keykeeper.destruction")

_COMPROMISED = (VersionState.COMPROMISED, VersionState.DESTROYED_COMPROMISED)


class Destruction:
    """Scheduled destruction, version erasure, and receipts."""

    def __init__(self, deps: Deps, lookup: KeyLookup, authz: Authorizer) -> None:
        self._d = deps
        self._lookup = lookup
        self._authz = authz
        self.signer = ReceiptSigner(deps.custody)
        self._receipts = ReceiptRepository()

    # -- the one erasure path -----------------------------------------------------------------
    def erase(self, conn: Connection, key: Key, versions: Sequence[int] | None, *,
              requested_by: str, destroyed_by: str, approval_id: str | None,
              at: datetime) -> list[ErasedVersion]:
        """Inside the caller's transaction, with ``key`` read and row-locked on ``conn``:
        erase ``versions`` (None: every version, scope ``key``), confirm none of them still
        holds material, and store a signed receipt. Returns the versions as erased.
        Raises Sealed (no signing key: the transaction rolls back), Internal if material
        remains after the erasure (it rolls back too)."""
        chosen = [v for v in key.versions if versions is None or v.version in versions]
        erased: list[ErasedVersion] = []
        in_hsm: list[str] = []   # CKA_IDs of HSM-protected versions (issue 6 §2)
        for v in chosen:
            blob = self._d.keys.wrapped_material(conn, key.id, v.version)
            hsm_id = self._d.keys.hsm_key_id(conn, key.id, v.version)
            digest = (hashlib.sha256(blob).hexdigest() if blob is not None
                      else sha256_of_id(hsm_id) if hsm_id is not None else None)
            if hsm_id is not None:
                in_hsm.append(hsm_id)
            state = (VersionState.DESTROYED_COMPROMISED if v.state in _COMPROMISED
                     else VersionState.DESTROYED)
            when = v.destroyed_at if v.state in ERASED and v.destroyed_at else at
            self._d.keys.update_version(conn, key.id, v.version, state=str(state),
                                        wrapped_material=None, hsm_key_id=None,
                                        destroyed_at=when)
            erased.append(ErasedVersion(v.version, str(state), when, digest))
        scope = tuple(v.version for v in chosen) if versions is not None else None
        if self._receipts.versions_with_material(conn, key.id, scope):
            raise Internal("wrapped material remained after erasure; nothing was destroyed")
        receipt_id, text = self.signer.sign(
            key=key, scope="key" if versions is None else "version", versions=erased,
            requested_by=requested_by, destroyed_by=destroyed_by, approval_id=approval_id,
            at=at)
        self._receipts.insert(conn, receipt_id=receipt_id, key_id=key.id, receipt=text,
                              created_at=at)
        # Last, so that any earlier failure leaves the token untouched: C_DestroyObject
        # of each HSM version's key; a failure here rolls the erasure back (service/erasure.py).
        destroy_in_hsm(self._d, in_hsm)
        return erased

    def checkpoint(self) -> None:
        """SQLite: fold the write-ahead log into the file and truncate it (the same step
        namespace deletion takes); logged if a reader kept it from completing. In an
        all-or-nothing batch, once it has committed."""
        self._d.after_commit(lambda: checkpoint_after_erasure(self._d, "key material"))

    # -- scheduled destruction ----------------------------------------------------------------
    def destroy_due(self, now: datetime, principal: str = "scheduler", *,
                    audit: KeyAudit | None = None) -> tuple[int, int]:
        """Crypto-erase every key pending destruction whose ``destruction_time`` is at or
        before ``now``: ``(done, failed)``. Each key is its own transaction, so one
        failure never stops the rest; a key no longer due when locked is skipped (neither).
        Each key destroyed, or whose destruction failed, is audited through ``audit``
        (operation ``key.destroy``; the scheduler passes it). Sealed: ``(0, 0)``, nothing
        can be signed. Idempotent."""
        if self._d.custody.sealed:
            return 0, 0
        with self._d.reading() as conn:
            due = self._d.keys.due_for_destruction(conn, now)
        done = failed = 0
        for key_id in due:
            try:
                key = self._destroy(key_id, now, principal)
            except Exception as exc:  # isolate each key's failure; the next run retries it
                failed += 1
                log.exception("scheduled destruction of key %s failed", key_id)
                if audit is not None:
                    audit("key.destroy", key_id, self._namespace_of(key_id), None,
                          error_code(exc))
                continue
            if key is not None:
                done += 1
                if audit is not None:
                    audit("key.destroy", key_id, key.namespace, None, None)
        if done:
            self.checkpoint()
        return done, failed

    def _namespace_of(self, key_id: str) -> str | None:
        """The key's namespace for the audit record of a failure (None if unreadable)."""
        try:
            with self._d.reading() as conn:
                key = self._d.keys.get_by_id(conn, key_id)
        except Exception:
            return None
        return key.namespace if key is not None else None

    def destroy_key(self, key_id: str, now: datetime, principal: str) -> bool:
        """Erase one key that is due; False if it is not (any more) pending destruction
        or not yet due."""
        return self._destroy(key_id, now, principal) is not None

    def _destroy(self, key_id: str, now: datetime, principal: str) -> Key | None:
        """:meth:`destroy_key`: the key as it was before, or None if nothing was done."""
        with self._d.transaction() as conn:
            key = self._d.keys.get_by_id(conn, key_id, for_update=True)
            if (key is None or key.state != KeyState.PENDING_DESTRUCTION
                    or key.destruction_time is None or key.destruction_time > now):
                return None
            to = (KeyState.DESTROYED_COMPROMISED if key.compromised_at else KeyState.DESTROYED)
            events = self._d.keys.events(conn, key.id)
            requested = [e for e in events if e["action"] == "schedule-destruction"]
            requested_by = str(requested[-1]["principal"]) if requested else principal
            self.erase(conn, key, None, requested_by=requested_by, destroyed_by=principal,
                       approval_id=None, at=now)
            self._d.keys.update(conn, key.id, state=str(to), updated_at=now)
            self._d.keys.record_event(conn, key_id=key.id, action="destroy",
                                      from_state=str(key.state), to_state=str(to),
                                      principal=principal, at=now)
        self._lookup.forget(key)
        return key

    # -- reads ------------------------------------------------------------------------------
    def receipts(self, ctx: RequestContext, ref: str) -> list[dict[str, Any]]:
        """The key's signed receipts, oldest first (works for a destroyed key: its
        metadata is kept). NotFound / PermissionDenied as for reading the key."""
        key = self._lookup.get(ctx, ref)
        self._authz.require_key(ctx, "key.receipt", key, ref)
        with self._d.reading() as conn:
            texts = self._receipts.for_key(conn, key.id)
        return [json.loads(t) for t in texts]

    def public_key_pem(self) -> str:
        """The receipt-signing public key (PEM). Raises Sealed."""
        return self.signer.public_key_pem()
