"""The cost of usage counting (service/usage.py) on encrypt throughput, in process.

One run builds an in-process keykeeper (services over a fresh SQLite file by default, or
``--database-url``) and drives ``Crypto.encrypt`` of 1 KiB under one AES-256-GCM key
through the service layer (authorization, lookup, use checks, AES-GCM) with two
``Crypto`` objects that share everything but the counter:

* off   ``Crypto(..., usage=None)``: no counting (a constructor switch the benchmark
        alone uses; a server always counts).
* on    ``Crypto(..., usage=UsageCounter)``: every encrypt takes a unit of the version's
        count (blocks reserved from the store, returned when idle), the server's setup.

The two run in interleaved rounds (off, on, off, on, ...) with 1 and with 4 threads, and
each row reports the median round: ops/s, p50 and p99 latency (µs, per call), the
process CPU time per encrypt (µs; it includes the counter's background thread and barely
moves with other load on the machine), and two overheads: ``rate`` = 1 - rate(on) /
rate(off) and ``cpu`` = cpu(on) / cpu(off) - 1. The issue's target is under 5 %. After
the run the stored count is checked against the encrypts done with counting on (exact).

There is no REST variant: counting cannot be switched off in a server (no setting), so a
REST comparison would need a second server build; the in-process figure is the whole
cost the counter adds to a request.

Results go to stdout and to bench/results/usage_counting.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from keykeeper.custody.keyring import Custody  # noqa: E402
from keykeeper.service.audit import Auditor  # noqa: E402
from keykeeper.service.context import Principal, RequestContext  # noqa: E402
from keykeeper.service.deps import Deps  # noqa: E402
from keykeeper.service.facade import Services, build_services  # noqa: E402
from keykeeper.service.keys import CreateKey  # noqa: E402
from keykeeper.service.operations import Crypto  # noqa: E402
from keykeeper.service.usage import UsageCounter  # noqa: E402
from keykeeper.store.engine import make_engine  # noqa: E402
from keykeeper.store.migrate import upgrade  # noqa: E402
from keykeeper.store.schema import key_versions  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "usage_counting.txt"
TARGET = 0.05
PLAINTEXT = os.urandom(1024)


class _NullSink:
    def write(self, record: object) -> None:
        pass


@dataclass(frozen=True)
class Round:
    config: str
    threads: int
    ops: int
    seconds: float
    cpu_seconds: float  # the whole process: the counter's background thread included
    latencies_us: list[float]

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.ops * 1e6


def build(url: str) -> Services:
    engine = make_engine(url)
    upgrade(engine)
    deps = Deps(engine=engine, custody=Custody())
    services = build_services(deps, Auditor([_NullSink()], deps.clock))
    services.system.init("bench passphrase", root_token="kk.bench-usage-counting-token-0001")
    services.system.unseal("bench passphrase")
    return services


def run_round(crypto: Crypto, config: str, threads: int, per_thread: int) -> Round:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start_line = threading.Barrier(threads + 1)

    def work(slot: int) -> None:
        ctx = RequestContext(interface="bench", principal=Principal("root"))
        out = latencies[slot]
        clock = time.perf_counter_ns
        start_line.wait()
        for _ in range(per_thread):
            t0 = clock()
            crypto.encrypt(ctx, "bench", PLAINTEXT)
            out.append((clock() - t0) / 1000)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start_line.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.join()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    flat = [x for part in latencies for x in part]
    return Round(config, threads, threads * per_thread, seconds, cpu, flat)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--ops", type=int, default=40_000, help="encrypts per round")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5,000")
    args = parser.parse_args()
    rounds, ops = (2, 5_000) if args.quick else (args.rounds, args.ops)

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        services = build(url)
        ctx = RequestContext(interface="bench", principal=Principal("root"))
        key = services.keys.create(ctx, CreateKey(name="bench"))
        counter = UsageCounter(services.deps, services.lookup)
        counter.start()
        configs = {
            "off": Crypto(services.lookup, services.authz, services.limits,
                          clock=services.deps.clock, usage=None),
            "on": Crypto(services.lookup, services.authz, services.limits,
                         clock=services.deps.clock, usage=counter),
        }
        for crypto in configs.values():  # warm the caches (metadata, handle, code paths)
            run_round(crypto, "warm", 1, 2_000)
        load_before = os.getloadavg()
        results: list[Round] = []
        for threads in (1, 4):
            for _ in range(rounds):
                for name, crypto in configs.items():
                    results.append(run_round(crypto, name, threads, ops // threads))
        load_after = os.getloadavg()
        counter.stop()
        with services.deps.reading() as conn:
            stored = conn.execute(select(key_versions.c.protect_count).where(
                key_versions.c.key_id == key.id, key_versions.c.version == 1)).scalar_one()
        counted = 2_000 + sum(r.ops for r in results if r.config == "on")
        services.deps.engine.dispose()

    lines = [f"usage counting: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}, "
             f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}, encrypt 1 KiB "
             f"in process, {rounds} interleaved rounds of {ops} (median round)",
             f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}",
             f"{'threads':>7} {'config':>6} {'ops/s':>9} {'p50 us':>8} {'p99 us':>8} "
             f"{'cpu us':>7} {'rate ovh':>9} {'cpu ovh':>8}"]
    worst_rate = worst_cpu = -1.0
    for threads in (1, 4):
        rows, cpu = {}, {}
        for name in configs:
            mine = [r for r in results if r.threads == threads and r.config == name]
            rows[name] = sorted(mine, key=lambda r: r.rate)[len(mine) // 2]
            cpu[name] = statistics.median(r.cpu_us for r in mine)
        rate_ovh = 1 - rows["on"].rate / rows["off"].rate
        cpu_ovh = cpu["on"] / cpu["off"] - 1
        worst_rate, worst_cpu = max(worst_rate, rate_ovh), max(worst_cpu, cpu_ovh)
        for name, r in rows.items():
            shown = (f"{rate_ovh:>9.1%} {cpu_ovh:>8.1%}" if name == "on"
                     else f"{'':>9} {'':>8}")
            lines.append(f"{threads:>7} {name:>6} {r.rate:>9.0f} "
                         f"{statistics.median(r.latencies_us):>8.1f} "
                         f"{pct(r.latencies_us, 99):>8.1f} {cpu[name]:>7.2f} {shown}")
    lines.append(f"stored protect_count {stored} for {counted} counted encrypts: "
                 f"{'exact' if stored == counted else 'MISMATCH'}")
    lines.append(f"worst overhead: rate {worst_rate:.1%}, cpu {worst_cpu:.1%} "
                 f"(target < {TARGET:.0%}): "
                 f"{'met' if max(worst_rate, worst_cpu) < TARGET else 'NOT met'}")
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    return 0 if stored == counted else 1


if __name__ == "__main__":
    raise SystemExit(main())
