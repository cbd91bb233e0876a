"""KMIP Create / Get / Encrypt: keykeeper's KMIP listener against PyKMIP's own server,
with the same client, in one run, beside a ceiling measured in the same run (issue 5).

Servers (bench/kmip_servers.py), all up for the whole run, each in its own process group:

* ``keykeeper``  ``run_server`` + the KMIP listener (mutual TLS), SQLite, default audit;
* ``pykmip``     PyKMIP 0.11's ``kmip.services.server`` (its config file, its SQLite DB in
                 the run's temporary directory, TLS 1.2, log level WARNING);
* ``echo``       bench/kmip_lean.py's bare TLS server, built as keykeeper's KMIP listener
                 (thread per connection, blocking sockets, keykeeper's TLS policy): reads a
                 TTLV message, decodes it, encodes it back -- the raw framework ceiling
                 (TLS + framing + codec, no KMIP work);
* ``echo-canned`` the same server answering each request with a canned response of its
                 operation (captured from PyKMIP's server in this run), decoded and
                 re-encoded: the ceiling for PyKMIP's client, which needs real responses.

Clients, one persistent TLS connection per thread (``--connections``, default 1):

* ``pykmip``  PyKMIP's ProxyKmipClient (KMIP 1.2): ``create(AES, 256)``, ``get(uid)``,
              ``encrypt(1 KiB, AES-CBC/PKCS5)`` through Cryptographic Parameters (CBC, not
              GCM: ProxyKmipClient drops the GCM tag of an Encrypt response);
* ``lean``    prebuilt binary TTLV requests (keykeeper.kmip.ttlv.codec) on an ssl socket,
              each answer read whole, decoded and its Result Status checked.

Operations: Create (AES-256 Symmetric Key, usage Encrypt|Decrypt), Get (one activated key),
Encrypt (1 KiB, AES-CBC, PKCS#5, server-made IV). For each server, client and operation:
ops/s, latency p50/p95/p99 (ms), the server's CPU time per operation (user + system of its
process group from /proc, before and after), the client's CPU per operation, ``of ceil``
(the rate over the ceiling's rate with the same client and operation) and ``cpu x ceil``
(server CPU per op over the ceiling server's). The summary prints keykeeper/PyKMIP server
CPU per operation against the targets: <= 1/20 for Get and Encrypt, <= 1/10 for Create.

Run: ``.venv/bin/python bench/kmip_ops.py [--seconds N] [--rounds R] [--connections C]``.
Results: stdout and bench/results/kmip_ops.txt.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import os
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

warnings.filterwarnings("ignore")  # PyKMIP: cryptography's deprecation warnings
sys.path.insert(0, str(Path(__file__).resolve().parent))

import kmip_lean as lean  # noqa: E402
import kmip_servers as servers  # noqa: E402

RESULTS = servers.ROOT / "bench" / "results" / "kmip_ops.txt"
OPS = ("create", "get", "encrypt")
TARGETS = {"create": 10, "get": 20, "encrypt": 20}  # keykeeper CPU/op <= PyKMIP's / N
PLAINTEXT = os.urandom(1024)
Op = Callable[[], object]


@dataclass
class Figure:
    server: str
    client: str
    op: str
    ops: int = 0
    seconds: float = 0.0
    latencies_us: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    error: str = ""

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    def pct_ms(self, p: float) -> float:
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1000

    @property
    def server_us(self) -> float:
        return self.server_cpu / self.ops * 1e6 if self.ops else float("nan")

    @property
    def client_us(self) -> float:
        return self.client_cpu / self.ops * 1e6 if self.ops else float("nan")


# -- clients ---------------------------------------------------------------------------------
def pykmip_client(pki: servers.Pki, port: int) -> object:
    from kmip.pie.client import ProxyKmipClient

    client = ProxyKmipClient(hostname="127.0.0.1", port=port, cert=str(pki.client),
                             key=str(pki.client_key), ca=str(pki.ca),
                             ssl_version="PROTOCOL_TLSv1_2", config_file=os.devnull)
    client.open()
    return client


def pykmip_ops(client: object, uid: str) -> dict[str, Op]:
    from kmip.core import enums

    c: object = client
    params = {"block_cipher_mode": enums.BlockCipherMode.CBC,
              "padding_method": enums.PaddingMethod.PKCS5,
              "cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
              "random_iv": True}
    mask = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]
    return {"create": lambda: c.create(enums.CryptographicAlgorithm.AES, 256,  # type: ignore[attr-defined]
                                       cryptographic_usage_mask=mask),
            "get": lambda: c.get(uid),  # type: ignore[attr-defined]
            "encrypt": lambda: c.encrypt(PLAINTEXT, uid=uid,  # type: ignore[attr-defined]
                                         cryptographic_parameters=params)}


def lean_requests(uid: str) -> dict[str, bytes]:
    return {"create": lean.create_aes256(), "get": lean.get(uid),
            "encrypt": lean.encrypt_cbc(uid, PLAINTEXT)}


def prepare_key(pki: servers.Pki, running: servers.Running
                ) -> tuple[str, dict[str, bytes], dict[str, str]]:
    """Create and activate one AES-256 key (over REST when KMIP Create fails on keykeeper);
    return its UID, each operation's answer, and the operations that failed (why)."""
    client = lean.LeanClient(running.port, lean.client_context(pki.ca, pki.client,
                                                               pki.client_key))
    failed: dict[str, str] = {}
    try:
        try:
            uid = lean.response_uid(client.call(lean.create_aes256()))
        except lean.KmipFailure as exc:
            if not running.token:
                raise
            failed["create"] = str(exc)
            uid = servers.rest_key(running, pki)
        with contextlib.suppress(lean.KmipFailure):  # a server may create it active
            client.call(lean.activate(uid))
        answers = {}
        for op, req in lean_requests(uid).items():
            answers[op] = client.exchange(req)
            try:
                client.call(req)
            except lean.KmipFailure as exc:
                failed[op] = str(exc)
        return uid, answers, failed
    finally:
        client.close()


def tls_of(pki: servers.Pki, port: int) -> str:
    """The protocol and cipher the lean client negotiates (ProxyKmipClient: TLS 1.2)."""
    client = lean.LeanClient(port, lean.client_context(pki.ca, pki.client, pki.client_key))
    try:
        cipher = client.sock.cipher()
        return f"{client.sock.version()} {cipher[0] if cipher else '?'}"
    finally:
        client.close()


# -- measuring -------------------------------------------------------------------------------
Made = tuple[Op, Callable[[], None]]  # an operation and the close of its connection


def measure(fig: Figure, running: servers.Running, make_op: Callable[[], Made],
            connections: int, seconds: float) -> Figure:
    """Run ``make_op()`` (an op and its close) on ``connections`` threads for ``seconds``."""
    made = [make_op() for _ in range(connections)]
    for op, _ in made:
        for _ in range(5):
            op()  # warm: connection up, caches filled
    lat: list[list[float]] = [[] for _ in made]
    start_line = threading.Barrier(connections + 1)
    stop = threading.Event()
    errors: list[str] = []

    def work(slot: int, op: Op) -> None:
        out, clock = lat[slot], time.perf_counter_ns
        start_line.wait()
        try:
            while not stop.is_set():
                t0 = clock()
                op()
                out.append((clock() - t0) / 1000)
        except Exception as exc:  # reported in the table
            errors.append(f"{type(exc).__name__}: {exc}"[:200])

    threads = [threading.Thread(target=work, args=(i, op)) for i, (op, _) in enumerate(made)]
    for t in threads:
        t.start()
    cpu0, mine0 = running.cpu_seconds(), time.process_time()
    start_line.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    fig.seconds = time.perf_counter() - t0
    fig.server_cpu = running.cpu_seconds() - cpu0
    fig.client_cpu = time.process_time() - mine0
    fig.latencies_us = [x for part in lat for x in part]
    fig.ops = len(fig.latencies_us)
    fig.error = "; ".join(sorted(set(errors)))
    for _, close in made:
        with contextlib.suppress(Exception):
            close()
    return fig


def figure(server: str, client: str, op: str, running: servers.Running, pki: servers.Pki,
           uid: str, connections: int, seconds: float) -> Figure:
    fig = Figure(server, client, op)

    def make_lean() -> Made:
        c = lean.LeanClient(running.port, lean.client_context(pki.ca, pki.client,
                                                              pki.client_key))
        data = lean_requests(uid)[op]
        return (lambda: c.call(data)), c.close

    def make_pykmip() -> Made:
        c = pykmip_client(pki, running.port)
        return pykmip_ops(c, uid)[op], c.close  # type: ignore[attr-defined]

    try:
        return measure(fig, running, make_lean if client == "lean" else make_pykmip,
                       connections, seconds)
    except Exception as exc:  # a server not ready yet: a row, not a crash
        fig.error = f"{type(exc).__name__}: {exc}"[:300]
        return fig


# -- the run ---------------------------------------------------------------------------------
CELLS = (("echo", "lean"), ("keykeeper", "lean"), ("pykmip", "lean"),
         ("echo-canned", "pykmip"), ("keykeeper", "pykmip"), ("pykmip", "pykmip"))
CEILING = {"lean": "echo", "pykmip": "echo-canned"}


def fmt_row(fig: Figure, ceiling: Figure | None, echo: Figure | None) -> str:
    head = f"{fig.op:8} {fig.server:12} {fig.client:7}"
    if fig.error and not fig.ops:
        return f"{head} n/a: {fig.error}"
    of_ceil = fig.rate / ceiling.rate if ceiling and ceiling.rate else float("nan")
    cpu_x = fig.server_us / echo.server_us if echo and echo.ops else float("nan")
    line = (f"{head} {fig.rate:8.0f} {fig.pct_ms(50):7.2f} {fig.pct_ms(95):7.2f} "
            f"{fig.pct_ms(99):7.2f} {fig.server_us:9.0f} {fig.client_us:8.0f} "
            f"{of_ceil:7.2f} {cpu_x:8.1f}")
    return line + (f"  ({fig.error})" if fig.error else "")


def summary(med: dict[tuple[str, str, str], Figure], ops: list[str]) -> list[str]:
    lines = ["# server CPU per operation, keykeeper / PyKMIP (target: <= 1/N)",
             f"{'op':8} {'client':7} {'keykeeper us':>12} {'pykmip us':>10} {'ratio':>7} "
             f"{'= 1/x':>7} {'target':>7}  verdict"]
    for op in ops:
        for client in ("pykmip", "lean"):
            kk, py = med.get(("keykeeper", client, op)), med.get(("pykmip", client, op))
            if not (kk and py and kk.ops and py.ops):
                lines.append(f"{op:8} {client:7} {'n/a':>12}")
                continue
            ratio = kk.server_us / py.server_us
            ok = ratio <= 1 / TARGETS[op]
            lines.append(f"{op:8} {client:7} {kk.server_us:12.0f} {py.server_us:10.0f} "
                         f"{ratio:7.3f} {1 / ratio if ratio else float('inf'):7.1f} "
                         f"{'1/' + str(TARGETS[op]):>7}  {'meets' if ok else 'misses'}")
    lines += ["", "# headroom: the target's budget (PyKMIP us / N) less the ceiling server's "
              "own cost (TLS, framing, decode + encode; no KMIP work)",
              f"{'op':8} {'client':7} {'budget us':>10} {'ceiling us':>10} {'left us':>8} "
              f"{'keykeeper above ceiling us':>26}"]
    for op in ops:
        for client in ("pykmip", "lean"):
            kk, py = med.get(("keykeeper", client, op)), med.get(("pykmip", client, op))
            ceil = med.get((CEILING[client], client, op))
            if not (kk and py and ceil and kk.ops and py.ops and ceil.ops):
                continue
            budget = py.server_us / TARGETS[op]
            lines.append(f"{op:8} {client:7} {budget:10.0f} {ceil.server_us:10.0f} "
                         f"{budget - ceil.server_us:8.0f} "
                         f"{kk.server_us - ceil.server_us:26.0f}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure and round")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (median)")
    parser.add_argument("--connections", type=int, default=1, help="client threads")
    parser.add_argument("--ops", default=",".join(OPS), help="subset, e.g. get,encrypt")
    parser.add_argument("--pykmip-log-level", default="WARNING", choices=("WARNING", "INFO"),
                        help="PyKMIP server's logging_level: WARNING (quiet, the default "
                             "here) or INFO (PyKMIP's own default)")
    args = parser.parse_args()
    ops = [o for o in args.ops.split(",") if o in OPS]
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kk-bench-kmip-") as tmp, \
            contextlib.ExitStack() as stack:
        work = Path(tmp)
        pki = servers.dev_certs(work / "pki")
        running: dict[str, servers.Running] = {}
        uids: dict[str, str] = {}
        down: dict[str, str] = {}
        pykmip = functools.partial(servers.pykmip_server, log_level=args.pykmip_log_level)
        for name, start in (("pykmip", pykmip), ("keykeeper", servers.keykeeper_server)):
            try:
                running[name] = stack.enter_context(start(pki, work))
                uids[name], answers, failed = prepare_key(pki, running[name])
                for op, why in failed.items():
                    down[f"{name} {op}"] = why
                if name == "pykmip":
                    replies = work / "replies.json"
                    lean.write_replies(replies, {lean.OP_CREATE: answers["create"],
                                                 lean.OP_GET: answers["get"],
                                                 lean.OP_ENCRYPT: answers["encrypt"]})
            except Exception as exc:  # reported; the rest still runs
                down[name] = f"{type(exc).__name__}: {str(exc)[:400]}"
                running.pop(name, None)
                traceback.print_exc(limit=2)
        running["echo"] = stack.enter_context(servers.echo_server(pki, work))
        uids["echo"] = uids["echo-canned"] = "echo"
        if "pykmip" in running:
            running["echo-canned"] = stack.enter_context(
                servers.echo_server(pki, work, replies))
        header = [f"# bench/kmip_ops.py  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  "
                  f"cpus={os.cpu_count()}  load before={load0:.2f}",
                  f"# {args.rounds} interleaved round(s) of {args.seconds:g} s per figure, "
                  f"{args.connections} connection(s); median round by rate; 1 KiB encrypt; "
                  f"PyKMIP server logging_level={args.pykmip_log_level}",
                  "# lean client TLS: " + ", ".join(
                      f"{n} {tls_of(pki, r.port)}" for n, r in running.items()),
                  *(f"# {n} failed at set-up: {why}" for n, why in down.items()),
                  f"{'op':8} {'server':12} {'client':7} {'ops/s':>8} {'p50 ms':>7} "
                  f"{'p95 ms':>7} {'p99 ms':>7} {'srv us/op':>9} {'cli us':>8} "
                  f"{'of ceil':>7} {'cpu x ceil':>8}"]
        print("\n".join(header[:-1]), flush=True)
        results: dict[tuple[str, str, str], list[Figure]] = {}
        for op in ops:
            for _ in range(args.rounds):
                for server, client in CELLS:
                    if server not in running:
                        continue
                    fig = figure(server, client, op, running[server], pki, uids[server],
                                 args.connections, args.seconds)
                    results.setdefault((server, client, op), []).append(fig)
        med = {k: sorted(v, key=lambda f: f.rate)[len(v) // 2] for k, v in results.items()}
        lines = list(header[-1:])
        for op in ops:
            for server, client in CELLS:
                row = med.get((server, client, op))
                if row is not None:
                    lines.append(fmt_row(row, med.get((CEILING[client], client, op)),
                                         med.get(("echo", "lean", op))))
        lines += ["", *summary(med, ops), f"# load after={os.getloadavg()[0]:.2f}"]
        print("\n".join(lines), flush=True)
        if any(n in down for n in ("keykeeper", "pykmip")):
            print("# see the logs above; the servers' own logs were in " + str(work))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(header[:-1] + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
