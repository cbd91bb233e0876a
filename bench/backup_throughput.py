"""Backup and restore throughput (issue 7, Tests and figures), in process.

For each key count (10,000 and 100,000 by default): a fresh store is seeded with that many
keys, 1 to 3 versions each, of the drill's mix of families (tests/backup/seed.py); then

* ``backup``:  BackupCreate.stream of the whole store to a file (re-wrap every version
  under the backup key, canonical JSON lines, digests, signature), keys/s;
* ``restore``: BackupRestore.restore of that file into a fresh, empty store (verify pass,
  then one transaction: re-wrap under the target's KEK, batched inserts), keys/s;

and the ceilings measured in the same run on the same rows:

* ``rewrap``: AES-256-GCM open under the namespace KEK and seal under the backup key of
  every version's material, nothing else (pyca/cryptography), keys/s;
* ``insert``: a raw executemany of the same keys, versions and events rows into a fresh
  store, one transaction, keys/s.

``growth`` is the time per key at the largest count over the time per key at the smallest
(1.0: linear). SQLite by default; ``--database-url`` adds PostgreSQL (each store in a
schema of its own, dropped after). Results go to stdout and bench/results/backup_throughput.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402
from tests.backup.seed import seed  # noqa: E402
from tests.integration.conftest import PASSPHRASE, Clock, Node, make_node  # noqa: E402

from keykeeper.service.backup_restore import RestoreOptions  # noqa: E402
from keykeeper.store import schema  # noqa: E402
from keykeeper.store.engine import make_engine  # noqa: E402
from keykeeper.store.migrate import upgrade  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "backup_throughput.txt"


class Store:
    """A fresh store on SQLite (a file in ``tmp``) or in a new PostgreSQL schema."""

    def __init__(self, backend: str, tmp: Path, name: str, pg_dsn: str | None) -> None:
        self.schema = None
        if backend == "postgresql":
            os.environ["KEYKEEPER_TEST_PG"] = pg_dsn or ""
            from tests.conftest import PgSchema
            self.schema = PgSchema()
            self.url = self.schema.url
        else:
            self.url = f"sqlite:///{tmp / (name + '.db')}"
        engine = make_engine(self.url)
        upgrade(engine)
        engine.dispose()
        self.node: Node = make_node(self.url, Clock())
        self.node.services.system.init(PASSPHRASE + name)
        self.node.services.system.unseal(PASSPHRASE + name)

    def close(self) -> None:
        self.node.services.deps.engine.dispose()
        if self.schema is not None:
            self.schema.drop()


def _rows(store: Store) -> dict[str, list[dict[str, Any]]]:
    with store.node.services.deps.reading() as conn:
        return {t: [dict(r._mapping) for r in conn.execute(select(schema.metadata.tables[t]))]
                for t in ("keys", "key_versions", "key_events")}


def rewrap_ceiling(versions: int) -> float:
    """Seconds to open and re-seal ``versions`` 32-byte materials with AES-256-GCM."""
    kek, backup = AESGCM(os.urandom(32)), AESGCM(os.urandom(32))
    sealed = [(n := os.urandom(12)) + kek.encrypt(n, os.urandom(32), b"aad")
              for _ in range(min(versions, 20_000))]
    started = time.perf_counter()
    done = 0
    while done < versions:
        for blob in sealed[: versions - done]:
            material = kek.decrypt(blob[:12], blob[12:], b"aad")
            nonce = os.urandom(12)
            backup.encrypt(nonce, material, b"aad2")
        done += min(len(sealed), versions - done)
    return time.perf_counter() - started


def insert_ceiling(rows: dict[str, list[dict[str, Any]]], backend: str, tmp: Path,
                   pg_dsn: str | None) -> float:
    target = Store(backend, tmp, "insert-ceiling", pg_dsn)
    try:
        names = {r["namespace"] for r in rows["keys"]} - {"default"}
        for name in names:
            target.node.services.namespaces.create(target.node.ctx(), name)
        events = [{k: v for k, v in r.items() if k != "id"} for r in rows["key_events"]]
        started = time.perf_counter()
        with target.node.services.deps.transaction() as conn:
            for table, batch in (("keys", rows["keys"]), ("key_versions", rows["key_versions"]),
                                 ("key_events", events)):
                for i in range(0, len(batch), 500):
                    conn.execute(insert(schema.metadata.tables[table]), batch[i:i + 500])
        return time.perf_counter() - started
    finally:
        target.close()


def run(backend: str, n: int, tmp: Path, pg_dsn: str | None) -> dict[str, float]:
    source = Store(backend, tmp, f"source-{n}", pg_dsn)
    try:
        seeded = seed(source.node.services, n, golden_sample=0, signature_sample=0)
        archive = tmp / f"{backend}-{n}.kkbackup"
        svc = source.node.services.backups
        assert svc is not None
        ctx = source.node.ctx()
        started = time.perf_counter()
        plan = svc.create.plan(ctx, shares=3, threshold=2)
        signer = svc.signer.fingerprint()  # pinned by the restore: another instance's
        with archive.open("wb") as f:
            for chunk in svc.create.stream(ctx, plan):
                f.write(chunk)
        backup = time.perf_counter() - started
        rows = _rows(source)
    finally:
        source.close()
    target = Store(backend, tmp, f"target-{n}", pg_dsn)
    try:
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        restorer = target.node.services.backups
        assert restorer is not None
        started = time.perf_counter()
        restorer.restore.restore(target.node.ctx(), lambda: archive.open("rb"),
                                 RestoreOptions(shares=plan.shares[:2], signer=signer),
                                 archive_sha256=digest)
        restore = time.perf_counter() - started
    finally:
        target.close()
    size = archive.stat().st_size
    archive.unlink()
    return {"keys": n, "versions": seeded.versions, "mib": size / 2**20, "backup": backup,
            "restore": restore, "rewrap": rewrap_ceiling(seeded.versions),
            "insert": insert_ceiling(rows, backend, tmp, pg_dsn)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", default="10000,100000", help="comma-separated key counts")
    parser.add_argument("--database-url", action="store_true",
                        help="also PostgreSQL (KEYKEEPER_TEST_PG, default the local one)")
    args = parser.parse_args(argv)
    counts = [int(k) for k in args.keys.split(",")]
    backends = ["sqlite"] + (["postgresql"] if args.database_url else [])
    pg_dsn = os.environ.get("KEYKEEPER_TEST_PG",
                            "host=127.0.0.1 port=5432 dbname=test user=postgres")
    lines = [f"backup_throughput: load average before {os.getloadavg()[0]:.2f}",
             f"{'backend':<11}{'keys':>8}{'versions':>10}{'MiB':>7}{'backup k/s':>12}"
             f"{'restore k/s':>13}{'rewrap k/s':>12}{'insert k/s':>12}"]
    print(lines[0], flush=True)
    print(lines[1], flush=True)
    for backend in backends:
        per_key: list[tuple[float, float]] = []
        for n in counts:
            with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
                r = run(backend, n, Path(tmp), pg_dsn)
            per_key.append((r["backup"] / n, r["restore"] / n))
            line = (f"{backend:<11}{n:>8}{int(r['versions']):>10}{r['mib']:>7.1f}"
                    f"{n / r['backup']:>12,.0f}{n / r['restore']:>13,.0f}"
                    f"{n / r['rewrap']:>12,.0f}{n / r['insert']:>12,.0f}")
            lines.append(line)
            print(line, flush=True)
        if len(per_key) > 1:
            line = (f"{backend:<11}growth (time per key, {counts[-1]:,} / {counts[0]:,}): "
                    f"backup {per_key[-1][0] / per_key[0][0]:.2f}, "
                    f"restore {per_key[-1][1] / per_key[0][1]:.2f}")
            lines.append(line)
            print(line, flush=True)
    lines.append(f"load average after {os.getloadavg()[0]:.2f}")
    print(lines[-1])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
