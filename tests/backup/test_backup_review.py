"""Hostile archives (review of issue 7): archives crafted by hand after
docs/backup-format.md, with a self-consistent signature (the forger's own Ed25519 key) and
a valid MAC (under the archive's own backup key, which whoever holds a quorum of shares
knows). The signature and the MAC prove only that the archive was not changed after its
maker finished it, not that this instance's store made it: so a restore must accept only
what a backup legitimately holds, refuse everything else with a clear error
(ArchiveInvalid, HTTP 400), and write nothing then."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keykeeper.backup import ArchiveInvalid, verify_archive
from keykeeper.backup.format import Header, canonical
from keykeeper.backup.verify import open_key
from keykeeper.errors import InvalidArgument
from keykeeper.service.key_args import CreateKey
from keykeeper.store import schema
from tests.backup.conftest import make_archive, restore
from tests.integration.conftest import Node

Mutate = Callable[[dict[str, Any], list[Any]], None]


def _forge(path: Path, shares: list[str], out: Path, mutate: Mutate) -> Path:
    """``path`` re-made after ``mutate(header, records)`` (records: dicts, renumbered, or
    raw bytes lines kept as they are), signed by a forger and MACed under the archive's
    own backup key: self-consistent in every way."""
    lines = path.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0])
    key = open_key(Header.parse(header), shares=shares)
    assert key is not None
    records: list[Any] = [json.loads(x) for x in lines[1:-2]]
    mutate(header, records)
    forger = Ed25519PrivateKey.generate()
    header["signer"]["public_key"] = base64.b64encode(
        forger.public_key().public_bytes_raw()).decode()
    out_lines = [canonical(header) + b"\n"]
    stream = hashlib.sha256(out_lines[0])
    digests: dict[str, Any] = {}
    counts: dict[str, int] = {}
    n = 0
    for r in records:
        if isinstance(r, bytes):
            line = r
        else:
            n += 1
            r["n"] = n
            line = canonical(r) + b"\n"
            digests.setdefault(r["t"], hashlib.sha256()).update(line)
            counts[r["t"]] = counts.get(r["t"], 0) + 1
        stream.update(line)
        out_lines.append(line)
    names = [t["name"] for t in header["tables"]]
    manifest = canonical({"manifest": {
        "records": n, "counts": {t: counts.get(t, 0) for t in names},
        "digests": {t: (digests[t] if t in digests else hashlib.sha256()).hexdigest()
                    for t in names},
        "stream_sha256": stream.hexdigest()}})
    trailer = canonical({"signature": base64.b64encode(forger.sign(manifest)).decode(),
                         "mac": base64.b64encode(key.mac(manifest)).decode()})
    out.write_bytes(b"".join(out_lines) + manifest + b"\n" + trailer + b"\n")
    return out


@pytest.fixture
def genuine(target_factory: Any, tmp_path: Path) -> tuple[Path, list[str]]:
    """A genuine archive of a small SQLite instance, and its shares."""
    source: Node = target_factory("sqlite")
    ctx = source.ctx()
    source.services.keys.create(ctx, CreateKey(name="k1"))
    path = tmp_path / "genuine.backup"
    return path, make_archive(source, path)


def _rows(n: Node, table: Any) -> list[Any]:
    with n.services.deps.reading() as conn:
        return list(conn.execute(table.select()).all())


def _snapshot(n: Node) -> dict[str, list[Any]]:
    return {t.name: sorted(map(repr, _rows(n, t)))
            for t in (schema.keys, schema.key_versions, schema.namespaces, schema.principals,
                      schema.tokens, schema.grants, schema.roles, schema.system_config)}


def _refused(target: Node, archive: Path, shares: list[str], match: str,
             exc: type[Exception] = ArchiveInvalid) -> None:
    before = _snapshot(target)
    with pytest.raises(exc, match=match):
        restore(target, archive, shares=shares)
    assert _snapshot(target) == before


def _record(table: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"n": 0, "t": table, "r": row}


def _first(records: list[Any], table: str) -> dict[str, Any]:
    return next(r for r in records if isinstance(r, dict) and r["t"] == table)


def test_the_genuine_archive_restores(genuine: Any, target_factory: Any,
                                      tmp_path: Path) -> None:
    """The control: a forgery that changes nothing restores (shares, its signer pinned
    by a restorer who trusts it)."""
    path, shares = genuine
    same = _forge(path, shares[:2], tmp_path / "same.backup", lambda h, r: None)
    assert restore(target_factory("sqlite"), same, shares=shares[:2]).counts["keys"] == 1


def test_deeply_nested_json_is_refused(genuine: Any, tmp_path: Path) -> None:
    """A record line of 100,000 nested arrays is corrupt input, not a crash."""
    path, shares = genuine
    deep = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    bad = _forge(path, shares[:2], tmp_path / "deep.backup",
                 lambda h, r: r.insert(0, deep))
    with pytest.raises(ArchiveInvalid, match="not valid JSON"):
        verify_archive(lambda: bad.open("rb"))


@pytest.mark.parametrize("line", [
    b'{"n":1,"t":["keys"],"r":{}}\n',      # a table name that is not text
    b'{"n":1,"t":{"a":1},"r":{}}\n',
])
def test_malformed_record_is_refused(genuine: Any, tmp_path: Path, line: bytes) -> None:
    path, shares = genuine
    bad = _forge(path, shares[:2], tmp_path / "rec.backup", lambda h, r: r.insert(0, line))
    with pytest.raises(ArchiveInvalid):
        verify_archive(lambda: bad.open("rb"))


def test_malformed_manifest_is_refused(genuine: Any, tmp_path: Path) -> None:
    path, _ = genuine
    lines = path.read_bytes().splitlines(keepends=True)
    for manifest in ({"records": len(lines) - 3, "counts": ["x"], "digests": {}},
                     {"records": len(lines) - 3, "counts": {}, "digests": "x"}):
        bad = tmp_path / "manifest.backup"
        bad.write_bytes(b"".join(lines[:-2]) + canonical({"manifest": manifest}) + b"\n"
                        + lines[-1])
        with pytest.raises(ArchiveInvalid):
            verify_archive(lambda: bad.open("rb"))  # noqa: B023


def test_malformed_custodian_entries_are_refused(genuine: Any, tmp_path: Path) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        header["custody"]["custodians"] = {"threshold": 2, "count": 2, "entries": 7}

    bad = _forge(path, shares[:2], tmp_path / "cust.backup", mutate)
    with pytest.raises(ArchiveInvalid):
        verify_archive(lambda: bad.open("rb"))


def test_system_config_beyond_the_policies_is_refused(genuine: Any, target_factory: Any,
                                                      tmp_path: Path) -> None:
    """A backup holds only the policy rows of system_config: an archive that carries the
    seal configuration (or any other row) must not overwrite this instance's."""
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        at = records.index(_first(records, "destruction_receipts")) if any(
            isinstance(r, dict) and r["t"] == "destruction_receipts" for r in records) \
            else next(i for i, r in enumerate(records) if r["t"] == "audit_head")
        records.insert(at, _record("system_config", {"name": "seal",
                                                     "value": '{"provider": "forged"}'}))

    bad = _forge(path, shares[:2], tmp_path / "seal.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "system_config")


def test_root_token_is_refused(genuine: Any, target_factory: Any, tmp_path: Path) -> None:
    """``root`` is the break-glass principal of one instance's init token: no archive
    may give anyone a root token (or a principal row named root) in another."""
    path, shares = genuine
    known = hashlib.sha256(b"the forger's token").hexdigest()

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        columns = next(t["columns"] for t in header["tables"] if t["name"] == "tokens")
        row: dict[str, Any] = dict.fromkeys((c for c, _ in columns), None)
        row.update(token_hash=known, principal="root", policies="[]", display_name="",
                   created_by="root", created_at="2024-01-01T00:00:00Z")
        at = next(i for i, r in enumerate(records) if r["t"] in ("roles", "grants",
                                                                 "system_config"))
        records.insert(at, _record("tokens", row))

    bad = _forge(path, shares[:2], tmp_path / "root.backup", mutate)
    target = target_factory("sqlite")
    _refused(target, bad, shares[:2], "root")
    assert not [t for t in _rows(target, schema.tokens) if t.token_hash == known]


def test_genuine_archive_holds_no_root_token(genuine: Any) -> None:
    """The source's init (root) token is not archived: it belongs to that instance."""
    path, _ = genuine
    for line in path.read_bytes().splitlines()[1:-2]:
        record = json.loads(line)
        if record["t"] == "tokens":
            assert record["r"]["principal"] != "root"


def test_unknown_column_is_refused(genuine: Any, target_factory: Any,
                                  tmp_path: Path) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        for t in header["tables"]:
            if t["name"] == "keys":
                t["columns"].append(["evil; DROP TABLE keys", "string"])
        for r in records:
            if r["t"] == "keys":
                r["r"]["evil; DROP TABLE keys"] = "x"

    bad = _forge(path, shares[:2], tmp_path / "col.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "column")


def test_missing_column_is_refused(genuine: Any, target_factory: Any,
                                  tmp_path: Path) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        for t in header["tables"]:
            if t["name"] == "keys":
                t["columns"] = [c for c in t["columns"] if c[0] != "namespace"]
        for r in records:
            if r["t"] == "keys":
                del r["r"]["namespace"]

    bad = _forge(path, shares[:2], tmp_path / "miss.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "column")


def test_wrong_column_kind_is_refused(genuine: Any, target_factory: Any,
                                     tmp_path: Path) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        for t in header["tables"]:
            if t["name"] == "keys":
                t["columns"] = [[c, "int" if c == "created_at" else k]
                                for c, k in t["columns"]]
        for r in records:
            if r["t"] == "keys":
                r["r"]["created_at"] = 12

    bad = _forge(path, shares[:2], tmp_path / "kind.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "column")


def test_duplicate_key_is_refused(genuine: Any, target_factory: Any, tmp_path: Path) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        key = _first(records, "keys")
        records.insert(records.index(key), json.loads(json.dumps(key)))

    bad = _forge(path, shares[:2], tmp_path / "dup.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "conflict")


def test_key_in_a_namespace_not_archived_is_refused(genuine: Any, target_factory: Any,
                                                    tmp_path: Path) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        _first(records, "keys")["r"]["namespace"] = "nowhere"

    bad = _forge(path, shares[:2], tmp_path / "ns.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "namespace")


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_time_out_of_range_is_refused(genuine: Any, target_factory: Any, tmp_path: Path,
                                      when: str) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        _first(records, "keys")["r"]["updated_at"] = when

    bad = _forge(path, shares[:2], tmp_path / "time.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "time")


def test_huge_int_is_refused(genuine: Any, target_factory: Any, tmp_path: Path) -> None:
    path, shares = genuine

    def mutate(header: dict[str, Any], records: list[Any]) -> None:
        _first(records, "keys")["r"]["primary_version"] = 10 ** 30

    bad = _forge(path, shares[:2], tmp_path / "int.backup", mutate)
    _refused(target_factory("sqlite"), bad, shares[:2], "out of range", InvalidArgument)


def test_forced_per_key_restore_keeps_the_other_keys(target_factory: Any,
                                                     tmp_path: Path) -> None:
    """A per-key archive holds one key: restoring it (forced, into the instance that
    has moved on) deletes nothing: the key keeps its newer version, and every other key
    stays as it is."""
    n: Node = target_factory("sqlite")
    svc, ctx = n.services, n.ctx()
    svc.keys.create(ctx, CreateKey(name="one"))
    other = svc.keys.create(ctx, CreateKey(name="other"))
    golden = svc.crypto.encrypt(ctx, "other", b"must survive").ciphertext
    archive = tmp_path / "one.backup"
    shares = make_archive(n, archive, keys=["one"])
    svc.keys.rotate(ctx, "one")
    result = restore(n, archive, shares=shares[:2], force=True)
    assert result.counts["keys"] == 1
    assert result.kept == {"namespaces": 1, "keys": 1, "key_versions": 1}
    assert result.added == {}
    assert svc.keys.get(ctx, "one").primary_version == 2
    assert [v.version for v in svc.keys.get(ctx, "one").versions] == [1, 2]
    assert svc.keys.get(ctx, other.id).name == "other"
    assert svc.crypto.decrypt(ctx, "other", golden)[0] == b"must survive"
