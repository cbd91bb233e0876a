"""Encrypt throughput with the audit chain on, against the same server with audit off.

One run measures, with wrk (2 threads, 32 connections, ``--latency``), ``POST
/v1/keys/k/encrypt`` of 1 KiB on a dev-mode keykeeper (SQLite, 1 worker by default) in
three audit configurations, each on a fresh data directory:

* off       ``KEYKEEPER_AUDIT_SINKS=none``: no audit record at all (benchmark-only setting;
            a production server always audits). This is the baseline.
* file      ``file:required``: the hash chain with an HMAC per record, the token and the
            context HMAC'd, the file writer thread, and each request waiting for the file's
            acknowledgement before it is answered (fail closed).
* default   ``file:required,database:best_effort``: the shipped default; the database sink
            adds batched inserts into SQLite on its own thread (not waited for).

The configurations are measured in interleaved rounds (off, file, default, off, ...), and
each row reports the median round, so slow drift of the machine affects all three alike.
``overhead`` is 1 - rate / rate(off); the issue's target is under 15 % for the chain.
The comparison is the whole audit trail against none, not merely the chain against an
unchained file.

Results go to stdout and to bench/results/audit_overhead.txt.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    AUTH,
    ROOT,
    WrkResult,
    ensure_wrk,
    group_cpu_seconds,
    keykeeper_server,
    wrk,
)

RESULTS = ROOT / "bench" / "results" / "audit_overhead.txt"
TARGET = 0.15
CONFIGS = {
    "off": "none",
    "file": "file:required",
    "default": "file:required,database:best_effort",
}


@dataclass(frozen=True)
class Run:
    config: str
    result: WrkResult
    cpu_us: float            # server CPU microseconds per request
    audit_lines: int         # records in the audit file(s) afterwards


def _body() -> bytes:
    plaintext = base64.b64encode(os.urandom(1024)).decode()
    return json.dumps({"plaintext": plaintext, "context": {"tenant": "bench"}}).encode()


def measure(config: str, args: argparse.Namespace, wrk_path: str, body: bytes) -> Run:
    os.environ["KEYKEEPER_AUDIT_SINKS"] = CONFIGS[config]
    try:
        with keykeeper_server(args.workers) as kk:
            with httpx.Client(base_url=kk.url, headers=AUTH, timeout=30) as client:
                client.post("/v1/keys", json={"name": "k"}).raise_for_status()
            url = kk.url + "/v1/keys/k/encrypt"
            wrk(wrk_path, url, body, seconds=args.warmup, connections=args.connections,
                threads=args.threads, timeout=30)
            before = group_cpu_seconds(kk.proc.pid)
            result = wrk(wrk_path, url, body, seconds=args.duration,
                         connections=args.connections, threads=args.threads, timeout=30)
            cpu = group_cpu_seconds(kk.proc.pid) - before
            assert kk.data_dir is not None
            lines = sum(p.read_bytes().count(b"\n") for p in kk.data_dir.glob("audit*.log"))
    finally:
        os.environ.pop("KEYKEEPER_AUDIT_SINKS", None)
    per = cpu * 1e6 / result.requests if result.requests else float("nan")
    return Run(config, result, per, lines)


def render(runs: list[Run], args: argparse.Namespace) -> str:
    by: dict[str, list[Run]] = {c: [r for r in runs if r.config == c] for c in CONFIGS}
    median = {c: sorted(rs, key=lambda r: r.result.rps)[len(rs) // 2] for c, rs in by.items()}
    base = median["off"].result.rps
    base_cpu = median["off"].cpu_us
    load = os.getloadavg()
    lines = [
        "keykeeper audit overhead (bench/audit_overhead.py)",
        f"date        {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"machine     {os.cpu_count()} CPUs; load average now {load[0]:.2f} / {load[1]:.2f}",
        f"load        wrk {args.threads} threads, {args.connections} connections, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s per run, {args.rounds} rounds, "
        f"{args.workers} worker(s); POST encrypt 1 KiB with a context",
        "",
        f"{'audit':<9} {'sinks':<38} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'cpu us':>7} {'overhead':>8} {'cpu +':>6} {'errors':>6} {'records':>9}",
    ]
    lines.append("-" * len(lines[-1]))
    for config, run in median.items():
        res = run.result
        overhead = 1 - res.rps / base if base else float("nan")
        cpu_more = run.cpu_us / base_cpu - 1 if base_cpu else float("nan")
        lines.append(
            f"{config:<9} {CONFIGS[config]:<38} {res.rps:9,.0f} {res.p50_ms:7.2f} "
            f"{res.p99_ms:7.2f} {run.cpu_us:7.1f} {overhead:8.1%} {cpu_more:6.1%} "
            f"{res.errors:>6} {run.audit_lines:>9,}")
    lines += ["", "rounds (req/s): " + "; ".join(
        f"{c} " + ", ".join(f"{r.result.rps:,.0f}" for r in rs) for c, rs in by.items())]
    spread = {c: (statistics.pstdev([r.result.rps for r in rs]) / statistics.mean(
        [r.result.rps for r in rs]) if len(rs) > 1 else 0.0) for c, rs in by.items()}
    lines.append("spread (stdev/mean): " + ", ".join(f"{c} {v:.1%}" for c, v in spread.items()))
    lines.append("")
    for config in ("file", "default"):
        overhead = 1 - median[config].result.rps / base
        verdict = "PASS" if overhead < TARGET else "FAIL"
        lines.append(f"target: overhead of '{config}' under {TARGET:.0%}: {overhead:.1%} "
                     f"{verdict}")
    lines += ["", "overhead = 1 - req/s / req/s(off); cpu + = server CPU per request over "
              "off's. 'off' writes no audit record (benchmark-only setting)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s runs")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 3.0, 1.0, 1
    wrk_path = ensure_wrk()
    body = _body()
    runs: list[Run] = []
    for n in range(args.rounds):
        for config in CONFIGS:
            print(f"-- round {n + 1}/{args.rounds}: {config}", file=sys.stderr, flush=True)
            runs.append(measure(config, args, wrk_path, body))
    text = render(runs, args)
    print(text, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
