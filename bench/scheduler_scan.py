"""Scheduler scan time over 100,000 keys: how long the lifecycle jobs take to find work.

Writes 100,000 keys (metadata, and random bytes as wrapped material) straight into a fresh
store with SQLAlchemy -- SQLite in a temporary directory, and PostgreSQL in a schema of its
own when it answers (``KEYKEEPER_TEST_PG``, as the tests) -- with 1 % of them due for
rotation and 1 % of them old enough to be near the end of their originator usage period.
Then times, the median of ``--repeat`` runs each:

* ceiling: ``SELECT count(*) FROM keys`` (the cheapest full look at the table);
* rotation: the rotation job's due-key scan (``scans.due_for_rotation``, pages of 500, on
  the ``next_rotation_time`` index), 1,000 keys found;
* crypto-periods: the activation and deactivation date scans and the scan for versions
  past their originator period (``scans.versions_ending_by(now)``);
* notices: the expiry-notice scan (``versions_ending_by(now + 30 days)``).

Prints ms per scan, keys/s (keys in the store over the scan time) and the ratio to the
ceiling; writes the table to bench/results/scheduler_scan.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import ROOT
from sqlalchemy import Connection, Engine, func, insert, select

from keykeeper.domain.keys import new_key_id
from keykeeper.scheduler.scans import (
    due_for_activation,
    due_for_deactivation,
    due_for_rotation,
    versions_ending_by,
)
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from keykeeper.store.schema import key_versions, keys, namespaces

RESULTS = ROOT / "bench" / "results" / "scheduler_scan.txt"
PG_DSN = os.environ.get("KEYKEEPER_TEST_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")
PAGE = 500
BATCH = 5000


def populate(engine: Engine, n: int, now: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(insert(namespaces).values(name="default", wrapped_kek=os.urandom(60),
                                               allow_legacy_rsa_2048=False, created_at=now))
    for start in range(0, n, BATCH):
        rows, versions = [], []
        for i in range(start, min(n, start + BATCH)):
            key_id = new_key_id()
            due = i % 100 == 0                      # 1 %: rotation due
            old = i % 100 == 50                     # 1 %: 2 years old (near the OUP end)
            created = now - dt.timedelta(days=720 if old else i % 300)
            rows.append(dict(
                id=key_id, namespace="default", name=f"k{i:06d}", purpose="encrypt",
                algorithm="AES_256_GCM", state="active", primary_version=1, description="",
                exportable=False, protection="software", created_by="bench",
                created_at=created, updated_at=created, rotation_period=90 * 86400,
                next_rotation_time=now - dt.timedelta(hours=1) if due
                else now + dt.timedelta(days=1 + i % 89)))
            versions.append(dict(key_id=key_id, version=1, state="active",
                                 wrapped_material=os.urandom(60), created_at=created))
        with engine.begin() as conn:
            conn.execute(insert(keys), rows)
            conn.execute(insert(key_versions), versions)


def _pages(scan: Callable[[Connection, object | None], list[object]],
           key: Callable[[object], object]) -> Callable[[Connection], int]:
    def run(conn: Connection) -> int:
        found, after = 0, None
        while True:
            page = scan(conn, after)
            found += len(page)
            if len(page) < PAGE:
                return found
            after = key(page[-1])
    return run


def scans(now: dt.datetime) -> dict[str, Callable[[Connection], int]]:
    rotation = _pages(lambda c, a: list(due_for_rotation(c, now, a, PAGE)),  # type: ignore[arg-type]
                      lambda row: row)

    def periods(conn: Connection) -> int:
        ending = _pages(lambda c, a: list(versions_ending_by(c, now, a, PAGE)),  # type: ignore[arg-type]
                        lambda row: row)  # found: versions (one per key here)
        return (len(due_for_activation(conn, now)) + len(due_for_deactivation(conn, now))
                + ending(conn))

    notices = _pages(lambda c, a: list(versions_ending_by(  # type: ignore[arg-type]
        c, now + dt.timedelta(days=30), a, PAGE)), lambda row: row)
    return {"ceiling: count(*)": lambda c: int(c.execute(select(func.count())
                                                         .select_from(keys)).scalar_one()),
            "rotation (1 % due)": rotation, "crypto-periods": periods,
            "expiry notices (30 d)": notices}


def measure(engine: Engine, now: dt.datetime, repeat: int) -> dict[str, tuple[float, int]]:
    out: dict[str, tuple[float, int]] = {}
    with engine.connect() as conn:
        for name, fn in scans(now).items():
            fn(conn)   # warm the cache
            times, found = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                found = fn(conn)
                times.append(time.perf_counter() - t0)
            out[name] = (statistics.median(times), found)
    return out


def run_backend(name: str, url: str, n: int, repeat: int, now: dt.datetime) -> list[str]:
    engine = make_engine(url)
    try:
        upgrade(engine)
        t0 = time.perf_counter()
        populate(engine, n, now)
        with engine.begin() as conn:   # statistics, as autovacuum would gather them
            conn.exec_driver_sql("ANALYZE")
        print(f"{name}: {n:,} keys written in {time.perf_counter() - t0:.1f} s", flush=True)
        results = measure(engine, now, repeat)
    finally:
        engine.dispose()
    ceiling = results["ceiling: count(*)"][0]
    lines = []
    for scan, (seconds, found) in results.items():
        lines.append(f"{name:<11} {scan:<22} {seconds * 1000:9.2f} {n / seconds:13,.0f} "
                     f"{seconds / ceiling:7.1f}x {found:>8,}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    now = dt.datetime.now(dt.UTC)
    load = os.getloadavg()
    lines = ["keykeeper scheduler scans (bench/scheduler_scan.py)",
             f"date        {now.isoformat(timespec='seconds')}",
             f"machine     {os.cpu_count()} CPUs; load average before {load[0]:.2f}",
             f"store       {args.keys:,} keys, 1 % due for rotation, 1 % near the end of "
             f"their originator period; median of {args.repeat} runs", "",
             f"{'backend':<11} {'scan':<22} {'ms/scan':>9} {'keys/s':>13} {'ratio':>8} "
             f"{'found':>8}"]
    lines.append("-" * len(lines[-1]))
    with tempfile.TemporaryDirectory(prefix="kk-bench-") as tmp:
        lines += run_backend("sqlite", f"sqlite:///{Path(tmp) / 'keykeeper.db'}",
                             args.keys, args.repeat, now)
    try:
        import psycopg
        with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as pg:
            schema = "kk_bench_" + secrets.token_hex(4)
            pg.execute(f'CREATE SCHEMA "{schema}"')
            try:
                params = dict(p.split("=", 1) for p in PG_DSN.split())
                url = (f"postgresql+psycopg://{params.get('user', 'postgres')}@{params['host']}"
                       f":{params['port']}/{params['dbname']}?options=-csearch_path%3D{schema}")
                lines += run_backend("postgresql", url, args.keys, args.repeat, now)
            finally:
                pg.execute(f'DROP SCHEMA "{schema}" CASCADE')
    except Exception as exc:  # report and go on with the SQLite figures
        lines.append(f"postgresql  skipped: {type(exc).__name__}: {exc}")
    load = os.getloadavg()
    lines += ["", f"load average after {load[0]:.2f}",
              "keys/s = keys in the store / scan time; ratio = scan time / count(*) time "
              "(the ceiling, measured in the same run)."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
