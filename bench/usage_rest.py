"""The cost of usage counting on REST encrypt throughput: keykeeper with and without the
counter, measured in the same run (the in-process view is bench/usage_counting.py).

Two dev-mode servers (one uvicorn worker, SQLite, audit file, bearer token, as in
production) serve ``POST /v1/keys/k/encrypt`` with 1 KiB of plaintext under wrk (2
threads, 16 connections):

* off   the server built with ``Crypto(..., usage=None)``: this benchmark patches the
        constructor in its own server process (no setting of the server can do this);
* on    the server as shipped: every encrypt takes a unit of the version's count.

The two run in interleaved rounds (off, on, off, on, ...); each row reports the median
round: req/s, p50 and p99 latency, and server CPU microseconds per request (which barely
moves with other load on the machine), and the overhead of ``on`` as ``rate`` = 1 -
rate(on) / rate(off) and ``cpu`` = cpu(on) / cpu(off) - 1. The issue's target: under 5 %.

    .venv/bin/python bench/usage_rest.py [--rounds 3] [--duration 8]

Results go to stdout and to bench/results/usage_rest.txt.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    AUTH,
    PYTHON,
    ROOT,
    TOKEN,
    Server,
    _process,
    ensure_wrk,
    free_port,
    group_cpu_seconds,
    wrk,
)

RESULTS = ROOT / "bench" / "results" / "usage_rest.txt"
_UNCOUNTED = (
    "import keykeeper.service.facade as f; _C = f.Crypto; "
    "f.Crypto = lambda *a, **k: _C(*a, **{**k, 'usage': None}); ")


@contextlib.contextmanager
def server(counted: bool) -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="kk-bench-usage-"))
    port = free_port()
    code = (("" if counted else _UNCOUNTED)
            + "from keykeeper.config import run_server; "
            f"run_server(listen='127.0.0.1:{port}', dev=True, dev_root_token={TOKEN!r}, "
            f"data_dir={str(data_dir)!r})")

    def probe(client: httpx.Client) -> bool:
        with httpx.Client(base_url=client.base_url, timeout=2.0) as fresh:
            return fresh.get("/v1/sys/health").json().get("sealed") is False

    try:
        with _process("usage-" + ("on" if counted else "off"), [PYTHON, "-c", code], port,
                      probe, data_dir=data_dir) as srv:
            with httpx.Client(base_url=srv.url, headers=AUTH, timeout=30) as client:
                client.post("/v1/keys", json={"name": "k"}).raise_for_status()
            yield srv
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    wrk_path = ensure_wrk()
    body = json.dumps({"plaintext": base64.b64encode(os.urandom(1024)).decode()}).encode()
    results: dict[bool, list[tuple[float, float, float, float]]] = {False: [], True: []}
    load = os.getloadavg()[0]
    with server(False) as off, server(True) as on:
        for _ in range(args.rounds):
            for counted, srv in ((False, off), (True, on)):
                url = srv.url + "/v1/keys/k/encrypt"
                wrk(wrk_path, url, body, seconds=args.warmup, connections=args.connections,
                    threads=2)
                before = group_cpu_seconds(srv.proc.pid)
                r = wrk(wrk_path, url, body, seconds=args.duration,
                        connections=args.connections, threads=2)
                cpu = group_cpu_seconds(srv.proc.pid) - before
                results[counted].append((r.rps, r.p50_ms, r.p99_ms,
                                         cpu * 1e6 / max(r.requests, 1)))
    med = {c: tuple(statistics.median(x[i] for x in results[c]) for i in range(4))
           for c in results}
    lines = [f"usage counting over REST: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
             f"encrypt 1 KiB, 1 worker, SQLite, {args.rounds} interleaved rounds of "
             f"{args.duration:g} s (median), load average before {load:.2f}",
             f"{'config':7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu us':>7}"]
    for counted in (False, True):
        rps, p50, p99, cpu = med[counted]
        lines.append(f"{'on' if counted else 'off':7} {rps:8.0f} {p50:7.2f} {p99:7.2f} "
                     f"{cpu:7.1f}")
    rate_ovh = 1 - med[True][0] / med[False][0]
    cpu_ovh = med[True][3] / med[False][3] - 1
    lines.append(f"overhead: rate {rate_ovh:+.1%}, cpu {cpu_ovh:+.1%} (target < 5 %): "
                 + ("met" if max(rate_ovh, cpu_ovh) < 0.05 else "NOT met"))
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
