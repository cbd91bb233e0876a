"""REST encrypt/decrypt throughput against a ceiling measured in the same run (``make bench``).

For 1 and 2 uvicorn worker processes this measures, with wrk (2 threads, 32
connections, POST bodies from a Lua script, ``--latency``):

* ceiling        a bare ASGI callable (bench/ceiling_app.py) on the same uvicorn settings
                 that decodes the same JSON body and echoes it;
* starlette      the same echo through Starlette + a msgspec Struct (a second reference);
* encrypt        ``POST /v1/keys/k/encrypt`` with 1 KiB of plaintext (base64);
* decrypt        ``POST /v1/keys/k/decrypt`` of such a ciphertext;
* batch encrypt  1,000 items of 1 KiB per request, in items/s, against the raw
                 in-process AES-256-GCM rate (one thread, fresh random nonce per item).

keykeeper runs as ``run_server(dev=True)``: bearer-token authentication, the audit file
and the key cache are all on, as in production. Targets (issue): encrypt >= 50 % of the
ceiling; batch >= 25 % of the raw AES-GCM rate.

The load generator shares the machine: on 2 cores wrk competes with the server for CPU,
so the ``wrk cpu`` column shows how many cores wrk itself used.

Results go to stdout and to bench/results/latest.txt.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    AUTH,
    ROOT,
    Server,
    WrkResult,
    ensure_wrk,
    group_cpu_seconds,
    keykeeper_server,
    reference_server,
    wrk,
)

RESULTS = ROOT / "bench" / "results" / "latest.txt"
ITEM = 1024
BATCH = 1000
TARGET_ENCRYPT = 0.50
TARGET_BATCH = 0.25


@dataclass(frozen=True)
class Row:
    name: str
    workers: int
    result: WrkResult
    server_cpu: float            # CPU seconds the server's processes used during the run
    reference: float | None      # rps (or items/s) that the ratio is taken against
    reference_cpu_us: float | None = None  # the reference's server CPU us per request
    unit: str = "req/s"
    scale: int = 1               # items per request

    @property
    def rate(self) -> float:
        return self.result.rps * self.scale

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request (per item for a batch)."""
        done = self.result.requests * self.scale
        return self.server_cpu * 1e6 / done if done else float("nan")

    @property
    def cpu_ratio(self) -> float | None:
        """The reference's CPU cost per request over ours: the ratio an idle machine with a
        CPU-bound server would show (contention from other processes cancels out)."""
        if not self.reference_cpu_us or math.isnan(self.cpu_us):
            return None
        return self.reference_cpu_us / self.cpu_us

    @property
    def ratio(self) -> float | None:
        return self.rate / self.reference if self.reference else None


def raw_aes_gcm_rate(seconds: float = 3.0) -> float:
    """Items/s of AESGCM.encrypt on 1 KiB with a fresh os.urandom nonce, one thread.

    Timed in CPU seconds of this thread, so other load on the machine does not lower it.
    """
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    data = os.urandom(ITEM)
    aad = b"keykeeper:v1:k-" + b"0" * 32 + b":1\x00{}"
    n = 0
    start = time.thread_time()
    while (elapsed := time.thread_time() - start) < seconds:
        for _ in range(1000):
            aead.encrypt(os.urandom(12), data, aad)
        n += 1000
    return n / elapsed


def _bodies() -> tuple[bytes, bytes]:
    plaintext = base64.b64encode(os.urandom(ITEM)).decode()
    single = json.dumps({"plaintext": plaintext}).encode()
    batch = json.dumps({"items": [{"plaintext": plaintext}] * BATCH}).encode()
    return single, batch


def _ciphertext_body(url: str, single: bytes) -> bytes:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        r = client.post("/v1/keys", json={"name": "k", "purpose": "encrypt"})
        r.raise_for_status()
        r = client.post("/v1/keys/k/encrypt", content=single)
        r.raise_for_status()
        return json.dumps({"ciphertext": r.json()["ciphertext"]}).encode()


def run(args: argparse.Namespace) -> list[Row]:
    wrk_path = ensure_wrk()
    single, batch = _bodies()
    # The ceiling only echoes: a ciphertext body of the real shape and length will do.
    body = base64.b64encode(os.urandom(12 + ITEM + 16)).decode()
    shaped_ciphertext = json.dumps(
        {"ciphertext": f"keykeeper:v1:k-{os.urandom(16).hex()}:1:{body}"}).encode()

    def load(server: Server, path: str, body: bytes,
             connections: int | None = None) -> tuple[WrkResult, float]:
        """Warm up, then measure; returns wrk's result and the server's CPU seconds."""
        conns = connections or args.connections
        url = server.url + path
        wrk(wrk_path, url, body, seconds=args.warmup, connections=conns, threads=args.threads,
            timeout=30)
        before = group_cpu_seconds(server.proc.pid)
        result = wrk(wrk_path, url, body, seconds=args.duration, connections=conns,
                     threads=args.threads, timeout=30)
        return result, group_cpu_seconds(server.proc.pid) - before

    rows: list[Row] = []
    enc, dec = "/v1/keys/k/encrypt", "/v1/keys/k/decrypt"
    raw_us = 1e6 / args.raw_rate
    for workers in args.workers:
        print(f"-- {workers} worker(s)", file=sys.stderr, flush=True)
        with reference_server("ceiling_app:app", workers) as srv:
            refs = [Row("ceiling: bare ASGI echo", workers, *load(srv, enc, single), None),
                    Row("ceiling, decrypt-shaped body", workers,
                        *load(srv, dec, shaped_ciphertext), None)]
        if workers > 1:
            # uvicorn's multi-worker listener leaves TCP_NODELAY off (see serve_reference.py):
            # measure the ceiling with it on too, and take ratios against the higher one.
            with reference_server("ceiling_app:app", workers, nodelay=True) as srv:
                refs += [Row("ceiling + TCP_NODELAY listener", workers,
                             *load(srv, enc, single), None),
                         Row("ceiling + TCP_NODELAY, decrypt body", workers,
                             *load(srv, dec, shaped_ciphertext), None)]
        ceiling = max(refs[0::2], key=lambda r: r.rate)
        ceiling_dec = max(refs[1::2], key=lambda r: r.rate)
        for i, row in enumerate(refs):
            best = ceiling if i % 2 == 0 else ceiling_dec
            rows.append(replace(row, reference=best.rate, reference_cpu_us=best.cpu_us))
        with reference_server("ceiling_app:starlette_app", workers, nodelay=workers > 1) as srv:
            name = "Starlette + msgspec echo" + (" (NODELAY)" if workers > 1 else "")
            rows.append(Row(name, workers, *load(srv, enc, single), ceiling.rate,
                            ceiling.cpu_us))
        with keykeeper_server(workers) as kk:
            decrypt_body = _ciphertext_body(kk.url, single)
            rows.append(Row("keykeeper encrypt 1 KiB", workers, *load(kk, enc, single),
                            ceiling.rate, ceiling.cpu_us))
            rows.append(Row("keykeeper decrypt 1 KiB", workers, *load(kk, dec, decrypt_body),
                            ceiling_dec.rate, ceiling_dec.cpu_us))
            rows.append(Row(f"keykeeper batch encrypt {BATCH}x1 KiB", workers,
                            *load(kk, enc, batch, args.batch_connections),
                            args.raw_rate, raw_us, unit="items/s", scale=BATCH))
        print(f"   done ({workers} worker(s))", file=sys.stderr, flush=True)
    return rows


def _environment(args: argparse.Namespace) -> list[str]:
    def out(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    import uvicorn

    b1, b5 = args.load_before
    a1, a5, _ = os.getloadavg()
    return [
        f"date        {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"commit      {out(['git', 'rev-parse', '--short', 'HEAD'])}",
        f"machine     {os.cpu_count()} CPUs, {platform.machine()}; load average (1 / 5 min) "
        f"before {b1:.2f} / {b5:.2f}, after {a1:.2f} / {a5:.2f}",
        f"python      {platform.python_version()}, uvicorn {uvicorn.__version__} "
        "(asyncio loop, h11; log_level warning, access_log off)",
        f"wrk         {out(['wrk', '--version'])}",
        f"load        {args.threads} threads, {args.connections} connections "
        f"(batch: {args.batch_connections}), {args.warmup:g} s warm-up + "
        f"{args.duration:g} s per run",
    ]


def _ms(value: float) -> str:
    return f"{value:8.2f}" if value == value else "       -"  # NaN: wrk gave none


def _pct(value: float | None, width: int) -> str:
    return f"{value:{width}.1%}" if value is not None else "-".rjust(width)


NOTES = """\
ratio      rate against the reference: the bare ASGI ceiling with the same workers and body,
           or, for the batch, the raw single-thread AES-GCM rate (the issue's targets).
cpu us     server CPU time (all its processes) per request, or per item for the batch.
cpu ratio  the reference's cpu us over this row's: what `ratio` would be on a machine where
           only the server runs (CPU used by wrk and other processes cancels out).
p50/p99    per request (a batch request holds 1,000 items).  wrk cpu: cores wrk used.
"""


STALL_NOTE = """\
NOTE       with --workers > 1 uvicorn binds the listening socket itself with proto 0, so
           asyncio leaves TCP_NODELAY off on accepted connections and every keep-alive
           response waits ~40 ms for the client's delayed ACK (uvicorn issue #3149).
           keykeeper's run_server inherits this: see the TCP_NODELAY ceiling rows.
"""


def render(rows: list[Row], args: argparse.Namespace) -> str:
    lines = ["keykeeper REST benchmark (bench/rest_encrypt.py)", *_environment(args), ""]
    lines.append(f"raw AES-256-GCM in-process, 1 KiB, 1 thread (per CPU second): "
                 f"{args.raw_rate:,.0f} items/s "
                 f"({1e6 / args.raw_rate:.2f} us per item)")
    lines.append("")
    head = (f"{'configuration':<36} {'w':>2} {'rate':>10} {'unit':<8} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'ratio':>7} {'cpu us':>7} {'cpu ratio':>9} {'errors':>6} "
            f"{'wrk cpu':>7}")
    lines += [head, "-" * len(head)]
    for r in rows:
        res = r.result
        lines.append(
            f"{r.name:<36} {r.workers:>2} {r.rate:10,.0f} {r.unit:<8} {_ms(res.p50_ms)} "
            f"{_ms(res.p99_ms)} {_pct(r.ratio, 7)} {r.cpu_us:7.1f} {_pct(r.cpu_ratio, 9)} "
            f"{res.errors:>6} {res.wrk_cpu:7.2f}")
    lines += ["", NOTES]
    if any(r.workers > 1 and r.name.startswith("keykeeper") and 38 <= r.result.p50_ms <= 48
           for r in rows):
        lines += [STALL_NOTE]
    for r in rows:
        if r.name.startswith("keykeeper encrypt"):
            target, what = TARGET_ENCRYPT, "encrypt >= {:.0%} of the ceiling"
        elif r.name.startswith("keykeeper batch"):
            target, what = TARGET_BATCH, "batch   >= {:.0%} of raw AES-GCM"
        else:
            continue
        verdict = "PASS" if (r.ratio or 0) >= target else "FAIL"
        lines.append(f"target {what.format(target)}, {r.workers} worker(s): {_pct(r.ratio, 6)}"
                     f" {verdict}   (by cpu: {_pct(r.cpu_ratio, 6)})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2], help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch-connections", type=int, default=4,
                        help="connections for the 1,000-item batch (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    args.load_before = os.getloadavg()[:2]
    args.raw_rate = raw_aes_gcm_rate()
    rows = run(args)
    text = render(rows, args)
    print(text, end="")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
