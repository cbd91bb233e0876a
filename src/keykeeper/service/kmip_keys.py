"""Key operations in the shape KMIP gives them (issue 5 §2, §3), over the one key store.

A KMIP managed object is one key version (kmip/uids.py). What REST already offers is
reused as it is (KeyAdmin.activate, rotate, compromise; CompromiseService.compromise_version);
this module adds what KMIP needs in another shape, with the same authorization, dual
control and lifecycle events as REST:

* :meth:`KmipKeys.create` -- a key generated here, or registered with its material
  (KMIP Register: stored as an ``external`` key, its material validated as an import is,
  crypto/keyio.py), pre-active unless asked otherwise (KMIP 2.1 §6.1.3, §6.1.41: a new
  object is Pre-Active until activated or its Activation Date comes);
* :meth:`KmipKeys.material` -- the cleartext material of one version for KMIP Get
  (permission ``key.export``, the key created exportable -- KMIP Extractable --, and no
  dual-control rule on ``key.export`` for the caller: a KMIP request cannot wait for
  approvals), or its public key (permission ``public_key``, always);
* :meth:`KmipKeys.deactivate` -- KMIP Revoke with a reason other than a compromise
  (KMIP 2.1 §6.1.45): the version, and the key when it is the primary version;
* :meth:`KmipKeys.destroy` -- KMIP Destroy (KMIP 2.1 §6.1.16): crypto-erasure of one
  version through the one erasure path (service/destruction.py), refused while the object
  is active; the key is destroyed once no version holds material.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection

from keykeeper.crypto import load_private, load_public
from keykeeper.crypto.keyio import check_import_format, import_private_material, import_public_key
from keykeeper.crypto.registry import AlgorithmSpec
from keykeeper.crypto.wrap import exportable_material
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.states import ERASED, KeyState, VersionState
from keykeeper.errors import (
    FailedPrecondition,
    InvalidArgument,
    KeykeeperError,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.approvals import Approvals
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.compromise import CompromiseService
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.key_args import CreateKey
from keykeeper.service.key_plan import plan_key
from keykeeper.service.keys import KeyAdmin
from keykeeper.service.kmip_attributes import (
    KMIP_LABEL_PREFIX,
    LabelChange,
    material_digest,
    write_kmip_labels,
)
from keykeeper.service.kmip_key_use import KmipKeyUseMixin
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.usage import UsageCounter
from keykeeper.service.versions import (
    PreparedVersion,
    discard_on_failure,
    new_version,
    prepare_first_version,
)
from keykeeper.store.keys import NewVersion

__all__ = ["Digester", "KmipAttributes", "KmipKeys", "Material", "checked_material"]

Digester = Callable[[], tuple[bytes, str] | None]
"""``()`` -> (SHA-256, format) of a new version's software material, or None."""
KmipAttributes = Callable[[Key, Digester], LabelChange]
"""``(created key, digest)`` -> the change of its ``kmip.*`` labels (KmipKeys.create)."""

_DEACTIVATABLE = (KeyState.PRE_ACTIVE, KeyState.ACTIVE, KeyState.SUSPENDED)
_LIVE_VERSION = (VersionState.ACTIVE, VersionState.SUSPENDED)
_ENDED = (KeyState.DESTROYED, KeyState.DESTROYED_COMPROMISED)


@dataclass(frozen=True, slots=True)
class Material:
    """Key material a client registers: ``format`` one of crypto/keyio.py's import
    formats (raw, pkcs8, pkcs1, sec1, spki), ``data`` DER (or raw bytes)."""

    format: str
    data: bytes = b""

    def __repr__(self) -> str:
        return f"Material(format={self.format!r}, data=<{len(self.data)} bytes>)"


def checked_material(spec: AlgorithmSpec, fmt: str,
                     data: bytes) -> tuple[str | None, bytes | None]:
    """(public key PEM or None, material to store or None for a public key alone) after
    the checks an import makes (service/key_import.py): the format suits the algorithm,
    the material parses and matches the algorithm (type, size, curve, exponent).
    InvalidArgument otherwise; the message never holds material."""
    check_import_format(spec, fmt)
    if fmt == "spki":
        if not spec.asymmetric:
            raise InvalidArgument(f"{spec.name} has no public key")
        return load_public(spec, import_public_key(spec, data)).public_key_pem(), None
    stored = import_private_material(spec, fmt, data)
    handle = load_private(spec, stored)
    return (handle.public_key_pem() if spec.asymmetric else None), stored


class KmipKeys(KmipKeyUseMixin):
    """KMIP's key operations (module docstring); ``keys`` gives the shared helpers that
    resolve, lock and gate a key exactly as REST does."""

    def __init__(self, deps: Deps, lookup: KeyLookup, authz: Authorizer, keys: KeyAdmin,
                 compromise: CompromiseService, approvals: Approvals,
                 usage: UsageCounter | None = None) -> None:
        self._d = deps
        self._lookup = lookup
        self._authz = authz
        self._keys = keys
        self._compromise = compromise
        self._approvals = approvals
        self._usage = usage

    # -- reads --------------------------------------------------------------------------------
    def key(self, ctx: RequestContext, key_id: str, operation: str = "key.get") -> Key:
        """The key ``key_id`` if the caller may run ``operation`` on it (NotFound when it
        may not see it, PermissionDenied when it may see but not act; the namespace's rate
        limit as REST). Metadata as the data plane reads it: cached for at most the
        metadata TTL (1 s; changes made on this node are seen at once); every change
        re-reads the key under its row lock."""
        return self._keys._authorized(ctx, key_id, operation)

    def name_taken(self, namespace: str, name: str) -> bool:
        """Whether ``namespace`` holds a key named ``name`` (a KMIP Name is kept as the
        key's name only when free)."""
        with self._d.reading() as conn:
            return self._d.keys.get_by_name(conn, namespace, name) is not None

    # -- create and register ----------------------------------------------------------------
    def create(self, ctx: RequestContext, args: CreateKey, *, pre_active: bool = True,
               material: Material | None = None,
               attributes: KmipAttributes | None = None) -> Key:
        """A key with its first version: generated here, or ``material`` registered
        (origin ``external``: never rotated here; permissions ``key.create`` and
        ``key.import``). Pre-active when ``pre_active`` and no past activation date is
        given, or when ``args.activation_date`` is to come. AlreadyExists for a name taken
        in the namespace, NotFound for an unknown namespace, InvalidArgument for a refused
        algorithm or material that does not match it.

        ``attributes(created, digest)``: the change of the new key's ``kmip.*`` labels
        (KMIP attributes keykeeper does not model, kmip/attributes.py ``planned_labels``),
        written in the same transaction as the key, with the checks of
        :meth:`KmipAttributeStore.change` (``key.update`` on the key and its labels, at
        most 64 labels); ``digest()`` is ``(SHA-256, format)`` of the new version's
        software material (service/kmip_attributes.py ``material_digest``; permission
        ``key.get``), None without any."""
        self._lookup.require_unsealed()
        ctx.namespace = args.namespace
        self._authz.require_create(ctx, args.namespace, args.name, args.labels)
        if material is not None:
            self._authz.require_attributes(ctx, "key.import", args.namespace, args.name,
                                           args.labels)
        try:
            key, spec, ns = plan_key(self._d, ctx, args,
                                     origin="generated" if material is None else "external",
                                     namespace=self._lookup.namespace)
        except NotFound as exc:   # the only NotFound of plan_key: the KMIP namespace
            raise NotFound(f"{exc.detail}: it is the KMIP namespace (KEYKEEPER_KMIP_NAMESPACE); "
                           f"create it with 'keykeeper namespace create {args.namespace}'"
                           ) from None
        checked = None if material is None else checked_material(spec, material.format,
                                                                   material.data)
        now = key.created_at
        if pre_active and key.state == KeyState.ACTIVE and args.activation_date is None:
            key = replace(key, state=KeyState.PRE_ACTIVE, activation_date=None)
        if material is not None:   # as an import: no rotation schedule
            key = replace(key, rotation_period=None, next_rotation_time=None)
        ctx.key_id = key.id
        if checked is None:
            prepared = prepare_first_version(self._d, key, spec, ns.wrapped_kek)
            first = new_version(self._d, prepared, key.id, key.namespace, 1)
        else:
            prepared = PreparedVersion(spec, (b"", None), ns.wrapped_kek)
            public_pem, stored = checked
            wrapped = (None if stored is None else self._d.custody.wrap_material(
                key.namespace, ns.wrapped_kek, key.id, 1, spec.name, stored))
            first = NewVersion(version=1, state=str(VersionState.ACTIVE),
                               wrapped_material=wrapped, public_key_pem=public_pem,
                               created_at=now)
        with discard_on_failure(self._d, prepared), self._d.transaction() as conn:
            self._d.keys.insert(conn, key, first)
            self._d.keys.record_event(
                conn, key_id=key.id, action="create" if material is None else "import",
                from_state=None, to_state=str(key.state), principal=ctx.actor, at=now,
                version=1, reason=("public key only" if checked is not None
                                   and checked[1] is None else None))
            created = self._d.keys.as_inserted(key, first)  # as get_by_id reads it back
            if attributes is not None:
                stored = prepared.material[0] if checked is None else checked[1]
                change = attributes(created, self._digester(ctx, created, spec, stored,
                                                            prepared.hsm is None))
                current = {k: v for k, v in created.labels.items()
                           if k.startswith(KMIP_LABEL_PREFIX)}
                wanted = dict(change(current))
                if wanted != current:  # as KmipAttributeStore.change, in this transaction
                    created = write_kmip_labels(self._d, self._authz, conn, ctx, created,
                                                lambda _: wanted, event=False)
        ctx.key_version = 1
        return created

    def _digester(self, ctx: RequestContext, key: Key, spec: AlgorithmSpec,
                  stored: bytes | None, software: bool) -> Digester:
        """The Digest source of a version being created from ``stored`` material (as
        :meth:`KmipAttributeStore.digest`, without reading back and unwrapping it)."""
        def digest() -> tuple[bytes, str] | None:
            self._authz.require_key(ctx, "key.get", key)
            if not software or not stored:
                return None
            try:
                return material_digest(load_private(spec, stored), spec.name)
            except KeykeeperError:
                return None
        return digest

    # -- material -----------------------------------------------------------------------------
    def material(self, ctx: RequestContext, key: Key, version: int, *,
                 public: bool) -> tuple[bytes, str]:
        """Cleartext material of ``version`` for a KMIP Get: ``(SPKI DER, "spki")`` of
        the public key when ``public`` (permission ``public_key``), else ``(raw key,
        "raw")`` or ``(PKCS#8 DER, "pkcs8")`` (permission ``key.export``).
        PermissionDenied for a key not created exportable (KMIP Extractable false), an
        HSM-protected key, or a caller whose exports need approvals (dual control: a
        KMIP request cannot wait for them; the approval policy as read at most 1 s ago,
        Approvals.cached_policy, like roles and grants); FailedPrecondition for a
        destroyed version or one holding a public key only; NotFound for an unknown
        version."""
        self._lookup.require_unsealed()
        ctx.namespace, ctx.key_id, ctx.key_version = key.namespace, key.id, version
        v = key.version(version)
        if v is None:
            raise NotFound(f"key '{key.ref}' has no version {version}")
        if public:
            self._authz.require_key(ctx, "public_key", key)
            if v.public_key_pem is None:
                raise FailedPrecondition(f"key '{key.ref}' has no public key")
            der = serialization.load_pem_public_key(v.public_key_pem.encode("ascii")).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            return der, "spki"
        self._authz.require_key(ctx, "key.export", key)
        if not key.exportable:
            raise PermissionDenied(f"key '{key.ref}' is not extractable: it was not created "
                                   "exportable, and its material never leaves keykeeper")
        if key.protection == "hsm":
            raise PermissionDenied("an HSM-protected key is never extractable")
        if v.state in ERASED:
            raise FailedPrecondition(f"key version {version} is destroyed")
        if v.public_only:
            raise FailedPrecondition(f"key version {version} holds a public key only")
        principal = ctx.principal
        if (principal is not None and not principal.is_root
                and self._approvals.cached_policy().rule_for("key.export") is not None):
            raise PermissionDenied(
                "exporting key material is under dual control (approval policy rule on "
                "'key.export'): a KMIP Get cannot wait for approvals; use the REST export "
                "(POST /v1/keys/{key}/export) or change the approval policy")
        return exportable_material(self._lookup.handle(key, version))

    # -- revoke ---------------------------------------------------------------------------------
    def compromise(self, ctx: RequestContext, key_id: str, version: int, reason: str,
                   when: datetime | None) -> Key:
        """KMIP Revoke with Key Compromise or CA Compromise: the whole key when
        ``version`` is its primary version (REST ``compromise``), else that version alone
        (``compromise_version``). Dual control as REST."""
        key = self.key(ctx, key_id)
        if version == key.primary_version:
            return self._keys.compromise(ctx, key.id, reason, compromise_time=when)
        return self._compromise.compromise_version(ctx, key.id, version, reason,
                                                   compromise_time=when)

    def deactivate(self, ctx: RequestContext, key_id: str, version: int,
                   reason: str | None = None) -> Key:
        """KMIP Revoke with any other reason: the version becomes deactivated (it still
        decrypts and verifies, SP 800-57 §7.3); when it is the primary version, the key
        becomes deactivated too, its deactivation date now. Permission ``key.update`` (as
        a PATCH of ``deactivation_date``). FailedPrecondition for a version or key not
        active, pre-active or suspended."""
        self._lookup.require_unsealed()
        ctx.key_version = version
        self._keys.get(ctx, key_id, "key.update")
        with self._d.transaction() as conn:
            key = self._keys._locked(conn, ctx, key_id, "key.update")
            v = key.version(version)
            if v is None:
                raise NotFound(f"key '{key.ref}' has no version {version}")
            now = self._d.clock()
            primary = version == key.primary_version
            if primary:
                if key.state not in _DEACTIVATABLE:
                    raise FailedPrecondition(f"cannot deactivate a key in state '{key.state}'")
                self._d.keys.update(conn, key.id, state=str(KeyState.DEACTIVATED),
                                    deactivation_date=now, updated_at=now)
            elif v.state not in _LIVE_VERSION:
                raise FailedPrecondition(f"key version {version} is {v.state}")
            if v.state in _LIVE_VERSION:
                self._d.keys.update_version(conn, key.id, version,
                                            state=str(VersionState.DEACTIVATED),
                                            deactivated_at=now)
            self._d.keys.update(conn, key.id, updated_at=now)
            self._d.keys.record_event(
                conn, key_id=key.id, action="deactivate" if primary else "deactivate-version",
                from_state=str(key.state if primary else v.state),
                to_state=str(KeyState.DEACTIVATED), principal=ctx.actor, at=now,
                version=version, reason=reason)
            result = self._d.keys.get_by_id(conn, key.id)
        self._lookup.forget(key)
        assert result is not None
        return result

    # -- destroy --------------------------------------------------------------------------------
    def destroy(self, ctx: RequestContext, key_id: str, version: int, *,
                keep_key: bool = False) -> Key:
        """Crypto-erase ``version`` (KMIP Destroy): permission ``key.destroy_version``,
        dual control as REST. Refused (FailedPrecondition) while the object is active: the
        key active or suspended with the version live; once no version of the key holds
        material, the key is destroyed (destroyed-compromised after a compromise) -- unless
        ``keep_key`` (a key pair's public object lives on: :meth:`close` ends the key
        once it is destroyed too). FailedPrecondition for a version already destroyed;
        NotFound."""
        self._lookup.require_unsealed()
        ctx.key_version = version
        current = self._keys.get(ctx, key_id, "key.destroy_version")
        _check_destroy(current, version)
        self._keys._dual_control(ctx, "key.destroy_version", current,
                                 f"destroy version {version} of key {current.ref}",
                                 version=version)
        with self._d.transaction() as conn:
            key = self._keys._locked(conn, ctx, key_id, "key.destroy_version")
            target = _check_destroy(key, version)
            now = self._d.clock()
            erased = self._keys.destruction.erase(
                conn, key, (version,), requested_by=ctx.on_behalf_of or ctx.actor,
                destroyed_by=ctx.actor, approval_id=ctx.approval_id, at=now)[0]
            self._d.keys.record_event(conn, key_id=key.id, action="destroy-version",
                                      from_state=str(target.state), to_state=erased.state,
                                      principal=ctx.actor, at=now, version=version)
            self._d.keys.update(conn, key.id, updated_at=now)
            if not keep_key:
                self._end_if_erased(conn, ctx, self._keys._reload(conn, key), now)
            result = self._d.keys.get_by_id(conn, key.id)
        self._lookup.forget(key)
        self._keys.destruction.checkpoint()
        assert result is not None
        return result

    def close(self, ctx: RequestContext, key_id: str) -> Key:
        """The key becomes destroyed (destroyed-compromised after a compromise) when none
        of its versions holds material any more (after :meth:`destroy` with
        ``keep_key``); otherwise unchanged. Permission ``key.destroy_version``."""
        self._lookup.require_unsealed()
        self._keys.get(ctx, key_id, "key.destroy_version")
        with self._d.transaction() as conn:
            key = self._keys._locked(conn, ctx, key_id, "key.destroy_version")
            self._end_if_erased(conn, ctx, key, self._d.clock())
            result = self._d.keys.get_by_id(conn, key.id)
        self._lookup.forget(key)
        assert result is not None
        return result

    def _end_if_erased(self, conn: Connection, ctx: RequestContext, key: Key,
                       now: datetime) -> None:
        if key.state in _ENDED or any(v.state not in ERASED for v in key.versions):
            return
        compromised = key.compromised_at is not None or any(
            v.state == VersionState.DESTROYED_COMPROMISED for v in key.versions)
        to = KeyState.DESTROYED_COMPROMISED if compromised else KeyState.DESTROYED
        self._d.keys.update(conn, key.id, state=str(to), updated_at=now,
                            destruction_time=None)
        self._d.keys.record_event(conn, key_id=key.id, action="destroy",
                                  from_state=str(key.state), to_state=str(to),
                                  principal=ctx.actor, at=now)


def _check_destroy(key: Key, version: int) -> KeyVersion:
    target = key.version(version)
    if target is None:
        raise NotFound(f"key '{key.ref}' has no version {version}")
    if target.state in ERASED:
        raise FailedPrecondition(f"key version {version} is already destroyed")
    if key.state in (KeyState.ACTIVE, KeyState.SUSPENDED) and target.state in _LIVE_VERSION:
        raise FailedPrecondition(f"key version {version} is active: revoke (deactivate) it "
                                 "before destroying it (KMIP 2.1 §6.1.16)")
    return target
