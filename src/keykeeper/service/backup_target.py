"""What a restore finds in its target (service/backup_restore.py; issue 7 §2).

:func:`not_empty_reason` is the one definition of an empty (fresh) instance: identity and
policy rows are restored only into one, and a scheduled backup of one is skipped
(service/backup_schedule.py). :func:`read_target` reads, in the restore's transaction,
what a forced restore must not overwrite: every key, name, version and namespace, and
what this instance knows as destroyed (erased rows, deleted namespaces, receipts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from keykeeper.authz.builtin import BUILTIN_ROLES, DEFAULT_GRANTS
from keykeeper.authz.model import ROOT
from keykeeper.domain.names import DEFAULT_NAMESPACE
from keykeeper.domain.states import ERASED, KeyState
from keykeeper.errors import FailedPrecondition
from keykeeper.store import schema

__all__ = ["DESTROYED_KEY", "ERASED_STATES", "Target", "not_empty_reason", "read_target"]

ERASED_STATES = frozenset(str(s) for s in ERASED)
DESTROYED_KEY = frozenset((str(KeyState.DESTROYED), str(KeyState.DESTROYED_COMPROMISED)))


@dataclass
class Target:
    """What the target holds, read in the restore's transaction (empty for a fresh one):
    ``versions`` it knows as destroyed (rows and receipts) with their state and
    destroyed_at; ``keys`` destroyed (state, updated_at); ``deleted_namespaces``; and,
    for a forced restore, every key id, ``namespace:name`` (-> id), version (-> state),
    namespace and receipt id."""

    fresh: bool = True
    versions: dict[tuple[str, int], tuple[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)
    deleted_namespaces: dict[str, Any] = field(default_factory=dict)
    all_keys: set[str] = field(default_factory=set)
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    all_versions: dict[tuple[str, int], str] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    receipts: set[str] = field(default_factory=set)


def read_target(conn: Connection, force: bool) -> Target:
    """What the target holds, in the restore's transaction. FailedPrecondition when it is
    not empty (:func:`not_empty_reason`) and the restore is not forced."""
    reason = not_empty_reason(conn)
    if reason is not None and not force:
        raise FailedPrecondition(f"this instance is not empty ({reason}): a restore goes "
                                 "into an empty instance, or is forced under dual "
                                 "control (a forced restore adds the key data this "
                                 "instance lacks, and nothing else)")
    known = Target(fresh=reason is None)
    known.receipts = {r.id for r in conn.execute(select(schema.destruction_receipts.c.id))}
    if known.fresh:
        return known
    t = schema.key_versions
    for r in conn.execute(select(t.c.key_id, t.c.version, t.c.state, t.c.destroyed_at)):
        known.all_versions[(r.key_id, int(r.version))] = r.state
        if r.state in ERASED_STATES:
            known.versions[(r.key_id, int(r.version))] = (r.state, r.destroyed_at)
    for r in conn.execute(select(schema.destruction_receipts.c.receipt)):
        try:
            doc = json.loads(r.receipt)
            for v in doc.get("versions", []):
                known.versions.setdefault((str(doc["key_id"]), int(v["version"])),
                                          (str(v.get("state") or "destroyed"), None))
        except (ValueError, KeyError, TypeError):
            continue
    k = schema.keys
    for kr in conn.execute(select(k.c.id, k.c.namespace, k.c.name, k.c.state,
                                  k.c.updated_at)):
        known.all_keys.add(kr.id)
        known.names[(kr.namespace, kr.name)] = kr.id
        if kr.state in DESTROYED_KEY:
            known.keys[kr.id] = (kr.state, kr.updated_at)
    n = schema.namespaces
    for nr in conn.execute(select(n.c.name, n.c.deleted_at)):
        known.namespaces.add(nr.name)
        if nr.deleted_at is not None:
            known.deleted_namespaces[nr.name] = nr.deleted_at
    return known


def not_empty_reason(conn: Connection) -> str | None:
    """Why this instance is not empty, or None when it is: the ONE definition of an empty
    (fresh) instance, for restores (identity and policy rows go only into an empty
    instance) and scheduled backups (an empty store is not backed up). Empty: no key, no
    namespace beyond ``default``, no principal, no token beyond the init (root) token, no
    role beyond the built-in ones as seeded, no grant beyond the default ones as seeded
    (authz/builtin.py), no destruction receipt."""
    if conn.execute(select(schema.keys.c.id).limit(1)).first() is not None:
        return "it holds keys"
    if conn.execute(select(schema.namespaces.c.name)
                    .where(schema.namespaces.c.name != DEFAULT_NAMESPACE).limit(1)).first():
        return "it holds namespaces other than default"
    if conn.execute(select(schema.principals.c.name).limit(1)).first() is not None:
        return "it holds principals"
    if conn.execute(select(schema.tokens.c.token_hash)
                    .where(schema.tokens.c.principal != ROOT).limit(1)).first() is not None:
        return "it holds tokens other than the init token"
    for r in conn.execute(select(schema.roles.c.name, schema.roles.c.operations,
                                 schema.roles.c.builtin)):
        seeded = BUILTIN_ROLES.get(r.name)
        if not r.builtin or seeded is None or _json(r.operations) != list(seeded[1]):
            return "it holds roles beyond the built-in ones"
    seed = {(role, tuple(ops), ns) for role, ops, ns in DEFAULT_GRANTS}
    g = schema.grants
    for gr in conn.execute(select(g.c.grantee_kind, g.c.grantee, g.c.operations, g.c.namespace,
                                  g.c.key_pattern, g.c.labels, g.c.condition, g.c.created_by)):
        ops = _json(gr.operations)
        if (gr.grantee_kind != "role" or gr.created_by != "system" or gr.key_pattern != "*"
                or _json(gr.labels) != {} or gr.condition is not None
                or not isinstance(ops, list)
                or (gr.grantee, tuple(ops), gr.namespace) not in seed):
            return "it holds grants beyond the default ones"
    if conn.execute(select(schema.destruction_receipts.c.id).limit(1)).first() is not None:
        return "it holds destruction receipts"
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
