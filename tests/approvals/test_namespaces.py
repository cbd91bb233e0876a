"""Namespaces in-process, on SQLite and PostgreSQL: administration, the legacy algorithm
policy, and deletion as crypto-erasure (what is left at rest, what old ciphertexts get,
and how fast a second node stops using the namespace)."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from keykeeper.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.keys import CreateKey
from keykeeper.service.namespaces import UNSET
from keykeeper.store.keys import KeyFilter
from keykeeper.store.schema import key_versions, keys, namespaces
from tests.approvals.conftest import Team
from tests.conftest import PG_DSN
from tests.integration.conftest import make_node


def test_create_list_get_update(team: Team) -> None:
    svc, so = team.svc, team.who("so")
    made = svc.namespaces.create(so, "payments", description="card data", rate_limit=50)
    assert (made.name, made.description, made.rate_limit, made.created_by) == (
        "payments", "card data", 50.0, "so")
    assert made.allow_legacy_rsa_2048 is False and made.keys == 0
    assert {n.name for n in svc.namespaces.list_namespaces(team.who("co"))} == {
        "default", "payments"}
    svc.keys.create(team.root(), CreateKey(name="k", namespace="payments"))
    assert svc.namespaces.get(team.who("aud"), "payments").keys == 1
    changed = svc.namespaces.update(so, "payments", description="cards",
                                    allow_legacy_rsa_2048=True)
    assert (changed.description, changed.allow_legacy_rsa_2048, changed.rate_limit) == (
        "cards", True, 50.0)
    assert svc.namespaces.update(so, "payments", rate_limit=None).rate_limit is None
    assert svc.namespaces.update(so, "payments", rate_limit=UNSET).rate_limit is None
    assert svc.namespaces.update(so, "payments", rate_limit=2.5).rate_limit == 2.5
    with svc.deps.reading() as conn:
        assert svc.deps.system.get_namespace_limit(conn, "payments") == 2.5


def test_refusals(team: Team) -> None:
    svc, so = team.svc, team.who("so")
    svc.namespaces.create(so, "dup")
    with pytest.raises(AlreadyExists):
        svc.namespaces.create(so, "dup")
    for bad in ("", "a b", "x" * 129, "k-" + "0" * 32, "a:b"):
        with pytest.raises(InvalidArgument):
            svc.namespaces.create(so, bad)
    for kwargs in ({"rate_limit": 0}, {"rate_limit": -1}, {"rate_limit": float("inf")},
                   {"description": "d" * 1025}, {"description": "nul\x00"}):
        with pytest.raises(InvalidArgument):
            svc.namespaces.create(so, "other", **kwargs)  # type: ignore[arg-type]
    for who in ("co", "app", "c1", "aud"):
        with pytest.raises(PermissionDenied):
            svc.namespaces.create(team.who(who), "nope")
        with pytest.raises(PermissionDenied):
            svc.namespaces.delete(team.who(who), "dup")
    with pytest.raises(PermissionDenied):
        svc.namespaces.list_namespaces(team.who("app"))
    with pytest.raises(FailedPrecondition, match="default"):
        svc.namespaces.delete(team.root(), "default")
    for call in (svc.namespaces.get, svc.namespaces.delete):
        with pytest.raises(NotFound):
            call(team.root(), "no-such")
    with pytest.raises(NotFound):
        svc.namespaces.update(team.root(), "no-such", description="x")


def test_legacy_rsa_2048_is_a_namespace_policy(team: Team) -> None:
    svc, root = team.svc, team.root()
    with pytest.raises(InvalidArgument):
        svc.keys.create(root, CreateKey(name="old", algorithm="RSA_OAEP_2048_SHA256"))
    svc.namespaces.create(root, "kmip-legacy", allow_legacy_rsa_2048=True)
    key = svc.keys.create(root, CreateKey(name="old", namespace="kmip-legacy",
                                          algorithm="RSA_OAEP_2048_SHA256"))
    assert key.algorithm == "RSA_OAEP_2048_SHA256"


def test_a_namespace_change_here_applies_to_the_next_create(team: Team) -> None:
    """Creates read the namespace through a 1 s cache (KeyLookup.namespace); a change
    made on this node is seen by the very next create."""
    svc, root = team.svc, team.root()
    svc.namespaces.create(root, "toggle")
    svc.keys.create(root, CreateKey(name="warm", namespace="toggle"))   # row now cached
    with pytest.raises(InvalidArgument):
        svc.keys.create(root, CreateKey(name="a", namespace="toggle",
                                        algorithm="RSA_OAEP_2048_SHA256"))
    svc.namespaces.update(root, "toggle", allow_legacy_rsa_2048=True)
    svc.keys.create(root, CreateKey(name="a", namespace="toggle",
                                    algorithm="RSA_OAEP_2048_SHA256"))
    svc.namespaces.update(root, "toggle", allow_legacy_rsa_2048=False)
    with pytest.raises(InvalidArgument):
        svc.keys.create(root, CreateKey(name="b", namespace="toggle",
                                        algorithm="RSA_OAEP_2048_SHA256"))


def test_another_nodes_namespace_change_within_a_second(team: Team, database_url: str) -> None:
    """Node B caches the row for at most the metadata TTL; a deletion on node A refuses
    B's next create at once all the same (the insert re-checks the row under a lock)."""
    a, root = team.svc, team.root()
    b_node = make_node(database_url, team.node.clock)
    b = b_node.services
    try:
        b.system.unseal("in-process test passphrase")
        a.namespaces.create(root, "seen")
        b.keys.create(root, CreateKey(name="warm", namespace="seen"))   # B caches the row
        a.namespaces.update(root, "seen", allow_legacy_rsa_2048=True)
        time.sleep(1.1)
        b.keys.create(root, CreateKey(name="rsa", namespace="seen",
                                      algorithm="RSA_OAEP_2048_SHA256"))
        b.keys.create(root, CreateKey(name="warm2", namespace="seen"))  # cached again
        a.namespaces.delete(root, "seen")
        with pytest.raises(NotFound, match="namespace 'seen'"):
            b.keys.create(root, CreateKey(name="late", namespace="seen"))
        with b.deps.reading() as conn:
            late = conn.execute(keys.select().where(keys.c.namespace == "seen",
                                                    keys.c.name == "late")).first()
        assert late is None
    finally:
        b.deps.engine.dispose()


def _stored_blobs(team: Team, namespace: str) -> list[bytes]:
    with team.svc.deps.reading() as conn:
        out = [bytes(r.wrapped_kek) for r in conn.execute(
            namespaces.select().where(namespaces.c.name == namespace))]
        out += [bytes(r.wrapped_material) for r in conn.execute(
            key_versions.select().where(key_versions.c.key_id.in_(
                keys.select().with_only_columns(keys.c.id)
                .where(keys.c.namespace == namespace).scalar_subquery())))
            if r.wrapped_material is not None]
    return out


def _pg_dump(url: str) -> bytes:
    schema = url.rsplit("%3D", 1)[1]
    chunks: list[bytes] = []
    with psycopg.connect(PG_DSN) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s",
            (schema,))]
        for table in tables:
            for row in conn.execute(f'select * from "{schema}"."{table}"'):
                chunks += [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                           for v in row]
    return b"\n".join(chunks)


def test_delete_is_crypto_erasure(team: Team, database_url: str,
                                  sqlite_path: Path | None) -> None:
    svc, root = team.svc, team.root()
    svc.namespaces.create(root, "doomed")
    ciphertexts = {}
    for name, algorithm in (("aes", "AES_256_GCM"), ("ec", "ECDSA_P256_SHA256"),
                            ("rsa", "RSA_OAEP_3072_SHA256"), ("mac", "HMAC_SHA256")):
        svc.keys.create(root, CreateKey(name=name, namespace="doomed", algorithm=algorithm))
        svc.keys.rotate(root, f"doomed:{name}")
    svc.keys.compromise(root, "doomed:mac", "leaked")
    ciphertexts["aes"] = svc.crypto.encrypt(root, "doomed:aes", b"secret").ciphertext
    aes_id = svc.keys.get(root, "doomed:aes").id
    svc.keys.create(root, CreateKey(name="kept"))
    kept = svc.crypto.encrypt(root, "kept", b"still here").ciphertext
    blobs = _stored_blobs(team, "doomed")
    assert len(blobs) == 1 + 8 and all(len(b) >= 40 for b in blobs)

    erased = svc.namespaces.delete(root, "doomed")
    assert (erased.keys_destroyed, erased.versions_destroyed) == (4, 8)

    # At rest: the KEK is empty bytes, no version holds material, every key is destroyed.
    with svc.deps.reading() as conn:
        row = svc.deps.system.get_namespace(conn, "doomed", include_deleted=True)
        assert row is not None and row.wrapped_kek == b"" and row.deleted_at is not None
        states = {r.name: r.state for r in conn.execute(
            keys.select().where(keys.c.namespace == "doomed"))}
        versions = list(conn.execute(key_versions.select().where(key_versions.c.key_id.in_(
            keys.select().with_only_columns(keys.c.id)
            .where(keys.c.namespace == "doomed").scalar_subquery()))))
    assert states == {"aes": "destroyed", "ec": "destroyed", "rsa": "destroyed",
                      "mac": "destroyed-compromised"}
    assert len(versions) == 8 and all(v.wrapped_material is None for v in versions)
    assert all(v.destroyed_at is not None for v in versions)
    if sqlite_path is not None:  # the files themselves, WAL included
        stored = b"".join(f.read_bytes() for f in sqlite_path.parent.glob(
            sqlite_path.name + "*"))
    else:  # live rows (dead tuples stay until VACUUM: docs/threat-model.md)
        stored = _pg_dump(database_url)
    leftovers = [n for n, b in enumerate(blobs) if b in stored]
    assert leftovers == [], f"{len(leftovers)} wrapped blob(s) still stored"

    # Old ciphertexts fail: the key no longer exists for any caller (not_found), by name
    # or by id, before any cryptography is attempted.
    for ref in ("doomed:aes", aes_id):
        with pytest.raises(NotFound):
            svc.crypto.decrypt(root, ref, ciphertexts["aes"])
        with pytest.raises(NotFound):
            svc.keys.get(root, ref)
    with pytest.raises(NotFound):
        svc.keys.create(root, CreateKey(name="new", namespace="doomed"))
    listed, _ = svc.keys.list_keys(root, KeyFilter(), None, None)
    assert {k.namespace for k in listed} == {"default"}
    listed, _ = svc.keys.list_keys(root, KeyFilter(namespace="doomed"), None, None)
    assert listed == []
    for call in (svc.namespaces.get, svc.namespaces.delete):
        with pytest.raises(NotFound):
            call(root, "doomed")
    with pytest.raises(AlreadyExists, match="never reused"):
        svc.namespaces.create(root, "doomed")
    assert "doomed" not in {n.name for n in svc.namespaces.list_namespaces(root)}
    # Nothing else was touched.
    assert svc.crypto.decrypt(root, "kept", kept)[0] == b"still here"
    # Lifecycle events name the erasure.
    with svc.deps.reading() as conn:
        events = svc.deps.keys.events(conn, aes_id)
    assert events[-1]["action"] == "destroy"
    assert "namespace 'doomed' deleted" in events[-1]["reason"]
    # This process holds nothing of it any more.
    assert "doomed" not in svc.deps.custody._keks
    assert not any(k[0] == aes_id for k in list(svc.deps.custody.handles._data))


def test_other_nodes_stop_within_a_second(team: Team, database_url: str) -> None:
    a = team.svc
    b_node = make_node(database_url, team.node.clock)
    b = b_node.services
    try:
        b.system.unseal("in-process test passphrase")
        a.namespaces.create(team.root(), "shared")
        a.keys.create(team.root(), CreateKey(name="k", namespace="shared"))
        ct = a.crypto.encrypt(team.root(), "shared:k", b"x").ciphertext
        assert b.crypto.decrypt(team.root(), "shared:k", ct)[0] == b"x"  # B caches it all
        assert "shared" in b.deps.custody._keks
        a.namespaces.delete(team.root(), "shared")
        time.sleep(1.1)  # the key metadata TTL
        with pytest.raises(NotFound):
            b.crypto.decrypt(team.root(), "shared:k", ct)
        with pytest.raises(NotFound):
            b.crypto.encrypt(team.root(), "shared:k", b"x")
        # B's sweeper (each second in a server) drops its copies of the KEK and handles.
        assert b.namespaces.forget_deleted() == 1
        assert "shared" not in b.deps.custody._keks
        assert len(b.deps.custody.handles) == 0
        assert b.namespaces.forget_deleted() == 0
    finally:
        b.deps.engine.dispose()


def test_a_key_created_while_its_namespace_is_erased_is_refused(
        team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """Key creation reads the namespace before its transaction; a deletion committed in
    between must not leave a live key behind (the insert re-checks under a share lock)."""
    svc, root = team.svc, team.root()
    svc.namespaces.create(root, "racy")
    with svc.deps.reading() as conn:
        before = svc.deps.system.get_namespace(conn, "racy")
    svc.namespaces.delete(root, "racy")
    monkeypatch.setattr(svc.deps.system, "get_namespace",
                        lambda conn, name, **kw: before)  # the read that raced
    with pytest.raises(NotFound, match="namespace 'racy'"):
        svc.keys.create(root, CreateKey(name="late", namespace="racy"))
    monkeypatch.undo()
    with svc.deps.reading() as conn:
        assert conn.execute(keys.select().where(keys.c.namespace == "racy")).first() is None
