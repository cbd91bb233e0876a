"""The disaster-recovery drill (issue 7 §3): 10,000 keys with versions on PostgreSQL ->
backup -> the database dropped -> restore onto a fresh SQLite store -> that store backed up
-> the SQLite file deleted -> restore onto a fresh PostgreSQL schema. After each restore
every key and version is there with its state, every golden ciphertext made before the
first backup decrypts (one per version of every symmetric key, and a sample made by the
service), and a sample of golden signatures verifies.

The recovery times (backup, restore) are printed for the record (``-s`` shows them;
docs/disaster-recovery.md quotes them). ``KEYKEEPER_DRILL_KEYS`` changes the key count.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import func, select

from keykeeper.service.backup_restore import RestoreOptions
from keykeeper.store import schema
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.backup.conftest import backups, make_archive
from tests.backup.seed import Golden, Seeded, seed
from tests.conftest import PgSchema, pg_available
from tests.integration.conftest import PASSPHRASE, Clock, Node, make_node

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

KEYS = int(os.environ.get("KEYKEEPER_DRILL_KEYS", "10000"))
THREADS = 4


class _Instance:
    """One fresh, initialised, unsealed in-process node on its own database."""

    def __init__(self, backend: str, tmp: Path, name: str) -> None:
        self.schema = PgSchema() if backend == "postgresql" else None
        self.file = None if self.schema else tmp / f"{name}.db"
        self.url = self.schema.url if self.schema else f"sqlite:///{self.file}"
        engine = make_engine(self.url)
        upgrade(engine)
        engine.dispose()
        self.node: Node | None = make_node(self.url, Clock())
        self.node.services.system.init(PASSPHRASE + " " + name)
        self.node.services.system.unseal(PASSPHRASE + " " + name)

    @property
    def n(self) -> Node:
        assert self.node is not None
        return self.node

    def drop(self) -> None:
        """The disaster: the engine closed and the database itself gone."""
        if self.node is not None:
            self.node.services.deps.engine.dispose()
            self.node = None
        if self.schema is not None:
            self.schema.drop()
        elif self.file is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(self.file) + suffix).unlink(missing_ok=True)


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[list[_Instance]]:
    if (reason := pg_available()):
        pytest.skip(reason)
    made: list[_Instance] = []
    yield made
    for inst in made:
        inst.drop()


def _timed_backup(n: Node, path: Path) -> tuple[list[str], float]:
    started = time.monotonic()
    shares = make_archive(n, path)
    return shares, time.monotonic() - started


def _timed_restore(n: Node, path: Path, shares: list[str], signer: str) -> float:
    """Restore with ``signer`` pinned: the fingerprint the operators recorded from the lost
    instance (``keykeeper backup signing-key``) before they lost it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def opener() -> IO[bytes]:
        return path.open("rb")

    started = time.monotonic()
    result = backups(n).restore.restore(n.ctx(), opener, RestoreOptions(shares=shares,
                                                                         signer=signer),
                                        archive_sha256=digest)
    seconds = time.monotonic() - started
    assert result.counts["keys"] == KEYS and not result.kept_destroyed
    return seconds


def _check(n: Node, seeded: Seeded) -> None:
    svc = n.services
    with svc.deps.reading() as conn:
        keys = dict(conn.execute(select(schema.keys.c.id, schema.keys.c.state)).all())
        versions = conn.execute(select(func.count()).select_from(schema.key_versions)
                                .where(schema.key_versions.c.wrapped_material.is_not(None))
                                ).scalar_one()
    assert keys == seeded.states
    assert versions == seeded.versions

    # A suspended key decrypts nothing: enabled for the check, suspended again after.
    suspended = [k for k, state in keys.items() if state == "suspended"]
    for key_id in suspended:
        svc.keys.enable(n.ctx(), key_id)

    def decrypt(g: Golden) -> bool:
        plaintext, version = svc.crypto.decrypt(n.ctx(), g.key_id, g.ciphertext, g.context)
        return plaintext == g.plaintext and version == g.version

    everything = seeded.goldens + seeded.service_goldens
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(decrypt, everything))
    assert len(results) == len(everything) and all(results), \
        f"{results.count(False)} of {len(results)} golden ciphertexts did not decrypt"
    for key_id, message, signature in seeded.signatures:
        ok, _ = svc.crypto.verify(n.ctx(), key_id, message, signature, prehashed=False,
                                  signature_format=None)
        assert ok, f"the golden signature of {key_id} does not verify"
    for key_id in suspended:
        svc.keys.disable(n.ctx(), key_id)


def test_drill_postgresql_to_sqlite_to_postgresql(instances: list[_Instance],
                                                   tmp_path: Path) -> None:
    source = _Instance("postgresql", tmp_path, "source")
    instances.append(source)
    seeded = seed(source.n.services, KEYS)
    assert seeded.keys == KEYS and len(seeded.goldens) > KEYS // 2
    assert len({a for a in seeded.by_algorithm}) >= 8 and len(seeded.signatures) >= 20
    first = tmp_path / "pg.kkbackup"
    shares, pg_backup = _timed_backup(source.n, first)
    pinned = backups(source.n).signer.fingerprint()
    source.drop()                                   # the PostgreSQL schema is gone

    sqlite = _Instance("sqlite", tmp_path, "sqlite-target")
    instances.append(sqlite)
    to_sqlite = _timed_restore(sqlite.n, first, [shares[2], shares[0]], pinned)
    _check(sqlite.n, seeded)

    second = tmp_path / "sqlite.kkbackup"
    shares2, sqlite_backup = _timed_backup(sqlite.n, second)
    pinned2 = backups(sqlite.n).signer.fingerprint()
    sqlite.drop()                                   # the SQLite file is gone

    pg = _Instance("postgresql", tmp_path, "pg-target")
    instances.append(pg)
    to_pg = _timed_restore(pg.n, second, shares2[:2], pinned2)
    _check(pg.n, seeded)

    mib = first.stat().st_size / 2**20
    goldens = len(seeded.goldens) + len(seeded.service_goldens)
    print(f"\nDRILL {KEYS} keys, {seeded.versions} versions, {goldens} goldens, "
          f"{len(seeded.signatures)} signatures; archive {mib:.1f} MiB\n"
          f"  seed (PostgreSQL)            {seeded.seconds:7.1f} s\n"
          f"  backup  PostgreSQL           {pg_backup:7.1f} s  ({KEYS / pg_backup:,.0f} keys/s)\n"
          f"  restore -> SQLite            {to_sqlite:7.1f} s  ({KEYS / to_sqlite:,.0f} keys/s)\n"
          f"  backup  SQLite               {sqlite_backup:7.1f} s  "
          f"({KEYS / sqlite_backup:,.0f} keys/s)\n"
          f"  restore -> PostgreSQL        {to_pg:7.1f} s  ({KEYS / to_pg:,.0f} keys/s)\n"
          f"  recovery time PG -> SQLite   {pg_backup + to_sqlite:7.1f} s; "
          f"SQLite -> PG {sqlite_backup + to_pg:7.1f} s")
