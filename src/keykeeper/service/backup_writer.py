"""Writing a verified archive into the target, in the restore's transaction
(service/backup_restore.py runs it; docs/disaster-recovery.md, "What a restore reports").

Into an EMPTY instance everything is written as archived, the identity and policy rows
included (the archive's grants replace the default ones). Into a NON-EMPTY instance (a
forced restore) only key data the target lacks is added: a namespace, key or version it
has is kept as it is (its KEK, key row, labels, events, states); a key whose name is
taken here by another key is left out; identity and policy rows are never touched.
Versions the target knows as destroyed stay destroyed unless ``restore_destroyed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Connection

from keykeeper.authz.model import ROOT
from keykeeper.backup.errors import ArchiveInvalid
from keykeeper.backup.format import Header, Material, Record
from keykeeper.backup.keys import BackupKey
from keykeeper.backup.verify import read_verified
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.service.backup_export import AUDIT_TABLE
from keykeeper.service.backup_target import DESTROYED_KEY as _DESTROYED_KEY
from keykeeper.service.backup_target import ERASED_STATES as _ERASED
from keykeeper.service.backup_target import Target
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.store import backup_tables as bt
from keykeeper.store import schema

__all__ = ["RestoreOptions", "RestoreResult", "RestoreWriter", "check_identity",
           "merge_summary"]

BATCH = 500


@dataclass(repr=False)
class RestoreOptions:
    """``shares`` (text) or ``backup_key`` (32 bytes a client recovered with custodian
    private keys); ``signer``: the fingerprint the archive must be signed by (else this
    instance's own); ``force``: restore into a non-empty instance (dual control; key data
    only); ``restore_destroyed``: also bring back versions this instance knows as
    destroyed (needs ``force``); ``approval_id``: the executed ``backup.restore`` approval
    a forced restore consumes."""

    shares: Sequence[str] = ()
    backup_key: bytes | None = None
    signer: str | None = None
    force: bool = False
    restore_destroyed: bool = False
    approval_id: str | None = None

    def __repr__(self) -> str:
        return (f"RestoreOptions(force={self.force}, restore_destroyed="
                f"{self.restore_destroyed}, <secrets hidden>)")


@dataclass
class RestoreResult:
    """What a restore did (docs/disaster-recovery.md, "What a restore reports").

    ``counts``: records the archive held, per table. ``added``: rows written new, per
    table (``namespaces``, ``keys``, ``key_versions``, ...). ``kept``: this instance's
    rows kept over the archive's copy (``namespaces``, ``keys``, ``key_versions``; a
    forced restore only). ``kept_destroyed`` / ``restored_destroyed``: versions this
    instance knows as destroyed that the archive holds with material, left destroyed or
    brought back (``key_id:version``). ``skipped``: identity and policy rows not restored
    (a forced restore into a non-empty instance), per table. ``conflicts``: archived keys
    left out because another key here has their ``namespace:name``.
    ``identity_restored``: whether identity and policy rows were restored (an empty
    instance)."""

    backup_id: str
    counts: dict[str, int]
    forced: bool
    kept_destroyed: list[str] = field(default_factory=list)     # "key_id:version"
    restored_destroyed: list[str] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)         # "namespace:name"
    identity_restored: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"backup_id": self.backup_id, "counts": self.counts, "forced": self.forced,
                "kept_destroyed": self.kept_destroyed,
                "restored_destroyed": self.restored_destroyed, "added": self.added,
                "kept": self.kept, "skipped": self.skipped, "conflicts": self.conflicts,
                "identity_restored": self.identity_restored}

    def bump(self, what: dict[str, int], table: str) -> None:
        what[table] = what.get(table, 0) + 1


#: What a key of the archive is to the target: written new, kept as the target has it, or
#: left out (its name is taken here by another key).
_ADDED, _KEPT, _CONFLICT = "added", "kept", "conflict"
_IDENTITY = frozenset(("principals", "tokens", "roles", "grants", "system_config"))
_PER_KEY = frozenset(("key_labels", "key_events"))


class RestoreWriter:
    """Writes one verified archive (see the module docstring)."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def write(self, ctx: RequestContext, conn: Connection, stream: IO[bytes], header: Header,
               key: BackupKey, signer: str, opts: RestoreOptions, known: Target,
               keks: dict[str, bytes]) -> RestoreResult:
        specs = {spec.name: spec for spec in bt.ARCHIVED}
        only = _scope(header)
        result = RestoreResult(backup_id=header.backup_id, counts={}, forced=opts.force,
                               identity_restored=known.fresh)
        pending: dict[str, list[dict[str, Any]]] = {}
        key_meta: dict[str, tuple[str, str, str]] = {}  # id -> namespace, algorithm, fate
        grants_cleared = False

        def flush(table: str) -> None:
            rows = pending.pop(table, [])
            if rows:
                bt.insert_rows(conn, specs[table], rows)

        def on_record(record: Record, material: bytes | None) -> None:
            nonlocal grants_cleared
            table = record.table
            if table == AUDIT_TABLE:
                return
            spec = specs.get(table)
            if spec is None:
                raise ArchiveInvalid(f"table {table} is not known to this instance")
            result.bump(result.counts, table)
            row = dict(record.row)
            if table == "namespaces":
                self._namespace(conn, row, keks, known, opts, result)
                return
            if table == "keys":
                if only is not None and row["id"] not in only:
                    raise ArchiveInvalid(f"key {str(row['id'])[:64]} is not among the keys "
                                         "the archive's scope names")
                fate = self._key(conn, ctx, row, known, opts, result, header)
                key_meta[row["id"]] = (row["namespace"], row["algorithm"], fate)
                if fate != _ADDED:
                    return
            elif table in _PER_KEY:
                meta = key_meta.get(row["key_id"])
                if meta is None:
                    raise ArchiveInvalid(f"a {table} row of key {str(row['key_id'])[:64]} "
                                         "comes before its key")
                if meta[2] != _ADDED:
                    return
            elif table == "key_versions":
                written = self._version(conn, ctx, row, material, key_meta, keks, known,
                                        opts, result, header)
                if written is None:
                    return
                row = written
            elif table in _IDENTITY:
                check_identity(spec, row)
                if not known.fresh:  # key data only: identity and policy stay as they are
                    result.bump(result.skipped, table)
                    return
                if table == "grants" and not grants_cleared:
                    # An empty instance holds only the default grants: the archive's
                    # grants (its own defaults among them) replace them, never add to them.
                    conn.execute(schema.grants.delete())
                    grants_cleared = True
                self._replace(conn, spec, row)
            elif table == "destruction_receipts" and (
                    row["id"] in known.receipts
                    or (not known.fresh and row["key_id"] not in known.all_keys
                        and key_meta.get(row["key_id"], ("", "", ""))[2] != _ADDED)):
                return  # held here already, or of a key neither here nor added
            result.bump(result.added, table)
            bucket = pending.setdefault(table, [])
            bucket.append(row)
            if len(bucket) >= BATCH:
                flush(table)
            for earlier in list(pending):
                if earlier != table:
                    flush(earlier)

        read_verified(stream, key=key, signer=signer, on_record=on_record, header=header)
        for table in list(pending):
            flush(table)
        return result

    def _namespace(self, conn: Connection, row: dict[str, Any], keks: dict[str, bytes],
                   known: Target, opts: RestoreOptions, result: RestoreResult) -> None:
        name = row["name"]
        existing = self._d.system.get_namespace(conn, name, include_deleted=True)
        erased = name in known.deleted_namespaces and not opts.restore_destroyed
        if erased:
            keks[name] = b""
            result.bump(result.kept, "namespaces")
            return  # stays deleted: its KEK is gone, its keys stay destroyed
        alive = existing is not None and existing.deleted_at is None and existing.wrapped_kek
        if not known.fresh and alive:
            assert existing is not None
            keks[name] = existing.wrapped_kek  # the target's namespace, as it is
            result.bump(result.kept, "namespaces")
            return
        if row.get("deleted_at") is not None:
            wrapped = b""
        elif existing is not None and alive:
            wrapped = existing.wrapped_kek  # its KEK stays: other nodes may hold it
        else:
            wrapped = self._d.custody.new_wrapped_kek(name)
        keks[name] = wrapped
        t = schema.namespaces
        values = {k: v for k, v in row.items() if k in t.c}
        values["wrapped_kek"] = wrapped
        if existing is not None:
            conn.execute(t.update().where(t.c.name == name).values(**values))
        else:
            conn.execute(t.insert().values(**values))
        result.bump(result.added, "namespaces")

    def _key(self, conn: Connection, ctx: RequestContext, row: dict[str, Any], known: Target,
             opts: RestoreOptions, result: RestoreResult, header: Header) -> str:
        """The fate of an archived key (``row`` adjusted in place when it is added)."""
        key_id = row["id"]
        if known.fresh or key_id not in known.all_keys:
            taken = known.names.get((row["namespace"], row["name"]))
            if taken is not None and taken != key_id:
                result.conflicts.append(f"{row['namespace']}:{row['name']}")
                return _CONFLICT
            if row["namespace"] in known.deleted_namespaces and not opts.restore_destroyed:
                row["state"] = str(KeyState.DESTROYED)
            return _ADDED
        result.bump(result.kept, "keys")
        gone = known.keys.get(key_id)
        if (gone is not None and opts.restore_destroyed
                and row["state"] not in _DESTROYED_KEY):
            # Brought back: the key's state (and destruction time) as archived.
            k = schema.keys
            conn.execute(k.update().where(k.c.id == key_id).values(
                state=row["state"], destruction_time=row.get("destruction_time"),
                updated_at=self._d.clock()))
            self._d.keys.record_event(conn, key_id=key_id, action="restore",
                                      from_state=gone[0], to_state=row["state"],
                                      principal=ctx.actor, at=self._d.clock(),
                                      reason=_why(header, ctx))
        return _KEPT

    def _version(self, conn: Connection, ctx: RequestContext, row: dict[str, Any],
                 material: bytes | None, key_meta: dict[str, tuple[str, str, str]],
                 keks: dict[str, bytes], known: Target, opts: RestoreOptions,
                 result: RestoreResult, header: Header) -> dict[str, Any] | None:
        """The version row to insert, or None when nothing is inserted (the target's own
        version kept, or brought back in place, or its key left out)."""
        key_id, version = row["key_id"], int(row["version"])
        meta = key_meta.get(key_id)
        if meta is None:
            raise ArchiveInvalid(f"version {version} of key {key_id} comes before its key")
        namespace, algorithm, fate = meta
        archived = row.get("wrapped_material")
        if (isinstance(archived, Material)
                and (archived.namespace, archived.algorithm) != (namespace, algorithm)):
            raise ArchiveInvalid(f"the material of key {key_id} version {version} names "
                                 "another namespace or algorithm than its key")
        if fate == _CONFLICT:
            return None
        gone = known.versions.get((key_id, version))
        ref = f"{key_id}:{version}"
        alive_here = row["state"] not in _ERASED
        if fate == _KEPT and (key_id, version) in known.all_versions:
            if gone is None or not alive_here or material is None:
                result.bump(result.kept, "key_versions")
                return None
            if not opts.restore_destroyed:
                # Destroyed here: stays so, with its own destroyed_at and no new event.
                result.kept_destroyed.append(ref)
                result.bump(result.kept, "key_versions")
                return None
            wrapped = self._rewrap(namespace, algorithm, key_id, version, material, keks)
            if wrapped is None:
                result.kept_destroyed.append(ref)
                result.bump(result.kept, "key_versions")
                return None
            t = schema.key_versions
            conn.execute(t.update().where(t.c.key_id == key_id, t.c.version == version)
                         .values(state=row["state"], wrapped_material=wrapped,
                                 public_key=row.get("public_key"), destroyed_at=None))
            self._d.keys.record_event(conn, key_id=key_id, version=version,
                                      action="restore-version", from_state=gone[0],
                                      to_state=row["state"], principal=ctx.actor,
                                      at=self._d.clock(), reason=_why(header, ctx))
            result.restored_destroyed.append(ref)
            return None
        if gone is not None and alive_here:
            if not opts.restore_destroyed:
                result.kept_destroyed.append(ref)
                state = (VersionState.DESTROYED_COMPROMISED if row["state"] in (
                    str(VersionState.COMPROMISED), str(VersionState.DESTROYED_COMPROMISED))
                    else VersionState(gone[0]) if gone[0] in _ERASED
                    else VersionState.DESTROYED)
                return {**row, "state": str(state), "wrapped_material": None,
                        "destroyed_at": gone[1] or row.get("destroyed_at")
                        or row["created_at"]}
            result.restored_destroyed.append(ref)
        if material is None:
            return {**row, "wrapped_material": None}
        wrapped = self._rewrap(namespace, algorithm, key_id, version, material, keks)
        if wrapped is None and alive_here:  # its namespace is erased here: so is it
            return {**row, "state": str(VersionState.DESTROYED), "wrapped_material": None,
                    "destroyed_at": row.get("destroyed_at") or self._d.clock()}
        return {**row, "wrapped_material": wrapped}

    def _rewrap(self, namespace: str, algorithm: str, key_id: str, version: int,
                material: bytes, keks: dict[str, bytes]) -> bytes | None:
        """``material`` wrapped under the target's KEK of ``namespace``; None when that
        namespace has no KEK here (erased)."""
        kek = keks.get(namespace, b"")
        if not kek:
            return None
        return self._d.custody.wrap_material(namespace, kek, key_id, version, algorithm,
                                             material)

    def _replace(self, conn: Connection, spec: bt.ArchivedTable, row: dict[str, Any]) -> None:
        """Into an empty instance only: delete the seed row with the archived row's primary
        key (a built-in role, the default SoD policy); the archived row is then inserted."""
        t = spec.table
        cond = [c == row[c.name] for c in t.primary_key.columns]
        conn.execute(t.delete().where(*cond))


def _why(header: Header, ctx: RequestContext) -> str:
    """The reason of a key event a forced restore with restore_destroyed writes."""
    return (f"backup {header.backup_id} restored with restore_destroyed"
            + (f" (approval {ctx.approval_id})" if ctx.approval_id else ""))


def merge_summary(result: RestoreResult) -> str:
    """What a restore wrote and kept, for its ``backup.restored`` record."""
    a, k = result.added, result.kept
    text = (f"; added {a.get('keys', 0)} keys, {a.get('key_versions', 0)} versions, "
            f"{a.get('namespaces', 0)} namespaces")
    if result.forced:
        text += (f"; kept this instance's {k.get('keys', 0)} keys, "
                 f"{k.get('key_versions', 0)} versions, {k.get('namespaces', 0)} namespaces")
    if result.conflicts:
        text += f"; {len(result.conflicts)} keys left out (name taken here)"
    return text + ("; identity and policy rows restored" if result.identity_restored
                   else "; identity and policy rows not touched (not an empty instance)")


def check_identity(spec: bt.ArchivedTable, row: dict[str, Any]) -> None:
    """What a backup never holds of identities and policies: ``system_config`` rows other
    than the policies, and anything of ``root``, the break-glass principal of each
    instance's own init token (ArchiveInvalid)."""
    if spec.config_names and row.get("name") not in spec.config_names:
        raise ArchiveInvalid(f"the archive holds the system_config row "
                             f"{str(row.get('name'))[:64]!r}: a backup holds only the "
                             f"policies ({', '.join(spec.config_names)})")
    if ((spec.name == "tokens" and row.get("principal") == ROOT)
            or (spec.name == "principals" and row.get("name") == ROOT)):
        raise ArchiveInvalid(f"the archive holds a {spec.name[:-1]} of {ROOT}: a backup "
                             f"never carries the break-glass principal of an instance")


def _scope(header: Header) -> frozenset[str] | None:
    """The key ids of a per-key archive (``scope`` ``{"kind": "keys", "keys": [...]}``),
    None for a full one; ArchiveInvalid for anything else."""
    scope = header.raw.get("scope")
    if scope == {"kind": "full"}:
        return None
    if (isinstance(scope, dict) and scope.get("kind") == "keys"
            and isinstance(scope.get("keys"), list) and scope["keys"]
            and all(isinstance(k, str) for k in scope["keys"])):
        return frozenset(scope["keys"])
    raise ArchiveInvalid("the archive's scope is malformed")
