"""KMIP attributes that keykeeper does not model, kept in the key's labels (issue 5 §3).

A KMIP object's Name beyond the first, Object Group, Contact Information, Links the
client adds, custom ``x-``/``y-`` attributes and the like live in labels named
``kmip.*`` -- one store: they are in backups and visible over REST. Their encoding is
kmip/attributes_store.py's; this service only guards and writes them: one transaction
per change, on the row-locked key, authorized as ``key.update`` (labels scope grants,
so the caller must hold ``key.update`` on the key as it will be), with an ``update``
lifecycle event. The KMIP processor records the audit record of the operation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection

from keykeeper.crypto.base import KeyHandle
from keykeeper.crypto.stored import CERTIFICATE_ALGORITHM, CertificateHandle
from keykeeper.crypto.wrap import exportable_material
from keykeeper.domain.keys import Key
from keykeeper.domain.states import ERASED, KeyState, check_transition
from keykeeper.errors import FailedPrecondition, InvalidArgument, KeykeeperError, NotFound
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.key_args import KMIP_LABEL_PREFIX, MAX_LABELS, check_labels
from keykeeper.service.lookup import KeyLookup

__all__ = ["KMIP_LABEL_PREFIX", "KmipAttributeStore", "material_digest", "write_kmip_labels"]


LabelChange = Callable[[Mapping[str, str]], Mapping[str, str]]
_REMEMBERED = 65_536   # keys whose creation state never_activated keeps in memory


class KmipAttributeStore:
    """Writes the ``kmip.*`` labels of a key; reads go through ``KeyAdmin.get``."""

    def __init__(self, deps: Deps, lookup: KeyLookup, authz: Authorizer) -> None:
        self._d = deps
        self._lookup = lookup
        self._authz = authz
        # key id -> created pre-active: a fact that never changes (never_activated)
        self._created_pre_active: dict[str, bool] = {}

    def never_activated(self, key: Key) -> bool:
        """Whether ``key`` left Pre-Active without ever being Active (revoked, compromised
        or destroyed straight from Pre-Active), so that its objects have no Activation
        Date (KMIP 1.4 §3.24, 2.1 §4.1: set when the object enters Active, or by the
        client). False for a pre-active key and a key with an ``activation_date``.

        Every way into Active sets ``activation_date`` (Activate, an import, the
        scheduled activation, whose date is set) but the creation of a key active from
        the start, which leaves it null (REST shows it so); such a key with a null
        ``activation_date`` was never active exactly when it was created pre-active,
        which its creation event tells (store ``created_states``; remembered per key, as
        it never changes). No authorization of its own: the caller holds ``key`` as
        read with its own permission, and this is metadata as its state is."""
        if key.state == KeyState.PRE_ACTIVE or key.activation_date is not None:
            return False
        self.prime_never_activated((key,))
        return self._created_pre_active.get(key.id, False)

    def prime_never_activated(self, keys: Iterable[Key]) -> None:
        """Learn, in one query, the creation state of every key of ``keys`` that
        :meth:`never_activated` would ask about (one page of a listing, at most a few
        thousand), so that asking about each of them after reads no more."""
        wanted = [k.id for k in keys if k.state != KeyState.PRE_ACTIVE
                  and k.activation_date is None and k.id not in self._created_pre_active]
        if not wanted:
            return
        with self._d.reading() as conn:
            states = self._d.keys.created_states(conn, wanted)
        if len(self._created_pre_active) + len(wanted) > _REMEMBERED:
            self._created_pre_active.clear()
        for key_id in wanted:
            self._created_pre_active[key_id] = states.get(key_id) == str(KeyState.PRE_ACTIVE)

    def change(self, ctx: RequestContext, key_id: str, change: LabelChange,
               operation: str = "key.update") -> Key:
        """Apply ``change`` to the key's current ``kmip.*`` labels (it receives them alone
        and returns the new ``kmip.*`` labels) in one transaction on the locked row; the
        key's other labels are kept. Returns the key as written. ``operation``: the
        permission it needs (``key.get`` for the Fresh flag a Get clears).

        NotFound if the caller may not see the key, PermissionDenied if it may not update
        it, FailedPrecondition for a destroyed key, InvalidArgument ("too many
        attributes") beyond 64 labels or a value over 256 characters."""
        self._lookup.require_unsealed()
        with self._d.transaction() as conn:
            key = self._d.keys.get_by_id(conn, key_id, for_update=True)
            if key is None:
                raise NotFound(f"key '{key_id}' not found")
            ctx.namespace, ctx.key_id = key.namespace, key.id
            fresh = write_kmip_labels(self._d, self._authz, conn, ctx, key, change, operation,
                                      key_id=key_id)
        if fresh is not key:
            self._lookup.forget(key)
        return fresh

    def digest(self, ctx: RequestContext, key: Key, version: int) -> tuple[bytes, str] | None:
        """KMIP Digest of a version's key material (KMIP 2.1 §4.12): ``(SHA-256, format)``
        with format ``raw`` (a secret key), ``pkcs1`` (an RSA private key) or ``pkcs8``
        (another private key), or None when the
        version holds no software material (destroyed, a public key alone, HSM-protected).
        Authorized as ``key.get``: a SHA-256 reveals nothing of the key, and the material
        is hashed where it is unwrapped, never returned."""
        self._authz.require_key(ctx, "key.get", key)
        v = key.version(version)
        if v is None or v.state in ERASED or v.public_only or v.in_hsm:
            return None
        self._lookup.require_unsealed()
        try:
            return material_digest(self._lookup.handle(key, version), key.algorithm)
        except KeykeeperError:
            return None

    def certificate_handle(self, ctx: RequestContext, key: Key, version: int,
                           operation: str = "key.get") -> CertificateHandle | None:
        """The loaded handle of a KMIP Certificate's ``version`` (algorithm
        ``X509_CERTIFICATE``, kmip/certificate.py): its DER, and its parsed form read
        lazily and cached with the handle (crypto/stored.py); None once it is destroyed.
        A certificate is public data: authorized as ``operation`` -- ``key.get`` for the
        attributes read from it, ``public_key`` for a KMIP Get, as a public key is
        served -- never ``key.export``, and neither Extractable nor an approval policy
        on exports applies. FailedPrecondition for a key that is not a certificate."""
        self._authz.require_key(ctx, operation, key)
        if key.algorithm != CERTIFICATE_ALGORITHM:
            raise FailedPrecondition(f"key '{key.ref}' is not a certificate")
        v = key.version(version)
        if v is None or v.state in ERASED:
            return None
        self._lookup.require_unsealed()
        handle = self._lookup.handle(key, version)
        if not isinstance(handle, CertificateHandle):   # the algorithm says it is one
            raise FailedPrecondition(f"key '{key.ref}' is not a certificate")
        return handle


def material_digest(handle: KeyHandle, algorithm: str) -> tuple[bytes, str]:
    """``(SHA-256 of the material, format)`` of a loaded software key (see
    :meth:`KmipAttributeStore.digest`). KeykeeperError (FailedPrecondition) for a handle
    without private material."""
    material, fmt = exportable_material(handle)
    if fmt == "pkcs8" and algorithm.startswith("RSA"):
        # KMIP's RSA private keys are PKCS#1 (KMIP 2.1 profiles' test cases)
        private = serialization.load_der_private_key(material, password=None)
        material, fmt = private.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()), "pkcs1"
    return hashlib.sha256(material).digest(), fmt


def write_kmip_labels(deps: Deps, authz: Authorizer, conn: Connection, ctx: RequestContext,
                      key: Key, change: LabelChange, operation: str = "key.update", *,
                      key_id: str | None = None, event: bool = True) -> Key:
    """In the caller's transaction, on ``key`` as just read (row-locked, or inserted by
    this transaction): apply ``change`` to its ``kmip.*`` labels as
    :meth:`KmipAttributeStore.change` describes (same checks: ``operation`` on the key
    and on its new labels, the ``update`` transition, at most 64 labels of at most 256
    characters). Returns ``key`` itself when nothing changes, else the key as written.
    ``event``: record the ``update`` lifecycle event and move ``updated_at`` (False for
    a key created by this same transaction: its ``create`` event covers the labels)."""
    authz.require_key(ctx, operation, key, key_id)
    check_transition("update", key.state)
    current = {k: v for k, v in key.labels.items() if k.startswith(KMIP_LABEL_PREFIX)}
    wanted = dict(change(current))
    if any(not k.startswith(KMIP_LABEL_PREFIX) for k in wanted):
        raise InvalidArgument("KMIP attributes are stored under 'kmip.' labels only")
    if wanted == current:
        return key
    labels = {k: v for k, v in key.labels.items() if not k.startswith(KMIP_LABEL_PREFIX)}
    labels.update(wanted)
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"too many attributes: a key holds at most {MAX_LABELS} "
                              "labels, KMIP attributes included")
    if any(len(v) > 256 for v in labels.values()):
        raise InvalidArgument("attribute value too long: an attribute is stored in a "
                              "label of at most 256 characters")
    checked = check_labels(labels)
    authz.require_attributes(ctx, operation, key.namespace, key.name, checked)
    if not event:  # the key and its labels were written by this transaction
        deps.keys.change_labels(conn, key.id, key.labels, checked)
        return replace(key, labels=MappingProxyType(dict(checked)))
    deps.keys.set_labels(conn, key.id, checked)
    now = deps.clock()
    deps.keys.update(conn, key.id, updated_at=now)
    deps.keys.record_event(conn, key_id=key.id, action="update", from_state=str(key.state),
                           to_state=str(key.state), principal=ctx.actor, at=now,
                           reason="changed: kmip attributes")
    fresh = deps.keys.get_by_id(conn, key.id)
    assert fresh is not None
    return fresh
