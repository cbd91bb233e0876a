"""HSM-backed operations beside software keys, in process, on SoftHSM2 (issue 6 §2).

One run builds an in-process keykeeper (services over a fresh SQLite file) whose custody
holds a fresh SoftHSM2 token (its own directory and ``SOFTHSM2_CONF``), creates one
software key and one ``protection: "hsm"`` key of each algorithm, and measures:

* ``software``  ``Crypto.encrypt`` / ``Crypto.sign`` through the service layer
                (authorization, lookup, use checks, usage counting, pyca/cryptography);
* ``hsm``       the same calls on the HSM key: the operation runs in the token through
                python-pkcs11 on a pooled session (custody/hsm/handles.py);
* ``raw``       the bare python-pkcs11 call on one session per thread with the key
                object held (the same mechanism and parameters, under the same
                process-wide library lock as custody/hsm/token.py): the HSM ceiling.

Operations: AES-256-GCM encrypt of 1 KiB, ECDSA P-256 sign (DER) and RSA-PSS-3072 sign
of a 64-byte message. Configurations run in interleaved rounds (software, hsm, raw, ...)
of ``--seconds`` each, with 1 thread and with 2; each row is the median round: ops/s,
p50 and p99 latency (µs per call), and two ratios: ``hsm/raw`` (how close the service
layer comes to the token's own rate) and ``hsm/sw`` (the HSM's rate over software's).

Results go to stdout and to bench/results/hsm_ops.txt. Needs SoftHSM2
(``scripts/ensure-softhsm.sh``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
RESULTS = ROOT / "bench" / "results" / "hsm_ops.txt"
PLAINTEXT = os.urandom(1024)
MESSAGE = os.urandom(64)
OPS = (("encrypt AES-256-GCM 1 KiB", "AES_256_GCM"),
       ("sign ECDSA P-256", "ECDSA_P256_SHA256"),
       ("sign RSA-PSS 3072", "RSA_PSS_3072_SHA256"))


class _NullSink:
    def write(self, record: object) -> None:
        pass


@dataclass(frozen=True)
class Round:
    ops: int
    seconds: float
    latencies_us: list[float]

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def make_token(directory: Path) -> tuple[str, str]:
    """A fresh SoftHSM2 token in ``directory`` (SOFTHSM2_CONF set for this process)."""
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\n"
                    "objectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label, pin = "bench-" + secrets.token_hex(4), secrets.token_hex(8)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                    "--so-pin", "so-" + pin, "--pin", pin], check=True, capture_output=True)
    return label, pin


def run_round(op: Callable[[], object], threads: int, seconds: float) -> Round:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start_line = threading.Barrier(threads + 1)
    stop = threading.Event()

    def work(slot: int, call: Callable[[], object]) -> None:
        out = latencies[slot]
        clock = time.perf_counter_ns
        start_line.wait()
        while not stop.is_set():
            t0 = clock()
            call()
            out.append((clock() - t0) / 1000)

    workers = [threading.Thread(target=work, args=(i, op)) for i in range(threads)]
    for w in workers:
        w.start()
    start_line.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    flat = [x for part in latencies for x in part]
    return Round(len(flat), elapsed, flat)


def raw_calls(label: str, pin: str, hsm_ids: dict[str, str]) -> dict[str, Callable[[], Any]]:
    """One python-pkcs11 session per thread, the key object held: the token's ceiling."""
    import pkcs11
    from pkcs11 import MGF, Mechanism, ObjectClass

    from keykeeper.crypto.registry import get_spec
    from keykeeper.custody.hsm.mechanisms import digest
    from keykeeper.custody.hsm.token import LIBRARY_LOCK

    token = pkcs11.lib(LIBRARY).get_token(token_label=label)
    local = threading.local()

    def key(algorithm: str) -> Any:
        cache = getattr(local, "keys", None)
        if cache is None:
            try:
                local.session = token.open(user_pin=pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                local.session = token.open(rw=True)
            cache = local.keys = {}
        if algorithm not in cache:
            cls = ObjectClass.SECRET_KEY if algorithm.startswith("AES") else ObjectClass.PRIVATE_KEY
            cache[algorithm] = local.session.get_key(object_class=cls,
                                                     id=bytes.fromhex(hsm_ids[algorithm]))
        return cache[algorithm]

    ec_digest = digest(get_spec("ECDSA_P256_SHA256"), MESSAGE)
    pss_digest = digest(get_spec("RSA_PSS_3072_SHA256"), MESSAGE)

    def locked(call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with LIBRARY_LOCK:   # as Token does: SoftHSM takes no locks of its own
                return call()
        return run

    return {
        "AES_256_GCM": locked(lambda: key("AES_256_GCM").encrypt(
            PLAINTEXT, mechanism=Mechanism.AES_GCM,
            mechanism_param=pkcs11.GCMParams(os.urandom(12), b"aad", 128))),
        "ECDSA_P256_SHA256": locked(lambda: key("ECDSA_P256_SHA256").sign(
            ec_digest, mechanism=Mechanism.ECDSA)),
        "RSA_PSS_3072_SHA256": locked(lambda: key("RSA_PSS_3072_SHA256").sign(
            pss_digest, mechanism=Mechanism.RSA_PKCS_PSS,
            mechanism_param=(Mechanism.SHA256, MGF.SHA256, 32))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per round and cell")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--quick", action="store_true", help="1 round of 0.5 s, 1 thread")
    args = parser.parse_args()
    rounds, seconds = (1, 0.5) if args.quick else (args.rounds, args.seconds)
    thread_counts = [1] if args.quick else [int(t) for t in args.threads.split(",")]
    if not Path(LIBRARY).exists() or shutil.which("softhsm2-util") is None:
        sys.exit("SoftHSM2 is required: run scripts/ensure-softhsm.sh (Debian: softhsm2)")

    with tempfile.TemporaryDirectory() as tmp:
        label, pin = make_token(Path(tmp))
        from sqlalchemy import select

        from keykeeper.custody.hsm.token import HsmConfig, Token
        from keykeeper.custody.keyring import Custody
        from keykeeper.service.audit import Auditor
        from keykeeper.service.context import Principal, RequestContext
        from keykeeper.service.deps import Deps
        from keykeeper.service.facade import build_services
        from keykeeper.service.keys import CreateKey
        from keykeeper.store.engine import make_engine
        from keykeeper.store.migrate import upgrade
        from keykeeper.store.schema import key_versions

        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        token = Token(HsmConfig(library=LIBRARY, token_label=label, pin=pin))
        deps = Deps(engine=engine, custody=Custody(hsm=token))
        services = build_services(deps, Auditor([_NullSink()], deps.clock))
        services.system.init("bench passphrase", root_token="kk.bench-hsm-ops-token-000001")
        services.system.unseal("bench passphrase")
        ctx = RequestContext(interface="bench", principal=Principal("root"))
        hsm_ids: dict[str, str] = {}
        for _, algorithm in OPS:
            for protection in ("software", "hsm"):
                key = services.keys.create(ctx, CreateKey(
                    name=f"{protection}-{algorithm}", algorithm=algorithm,
                    protection=protection))
                if protection == "hsm":
                    with deps.reading() as conn:
                        hsm_ids[algorithm] = str(conn.execute(select(
                            key_versions.c.hsm_key_id).where(
                            key_versions.c.key_id == key.id)).scalar_one())
        crypto = services.crypto
        raw = raw_calls(label, pin, hsm_ids)

        def service_call(name: str, algorithm: str) -> Callable[[], object]:
            if algorithm.startswith("AES"):
                return lambda: crypto.encrypt(ctx, name, PLAINTEXT)
            return lambda: crypto.sign(ctx, name, MESSAGE, prehashed=False,
                                       signature_format=None)

        load = os.getloadavg()
        lines = [f"# bench/hsm_ops.py  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  "
                 f"SoftHSM2 {LIBRARY}  cpus={os.cpu_count()}  load before={load[0]:.2f}",
                 f"# {rounds} interleaved rounds of {seconds:.1f} s per cell; median round",
                 f"{'operation':28} {'thr':>3} {'config':9} {'ops/s':>9} {'p50 us':>9} "
                 f"{'p99 us':>9} {'hsm/raw':>8} {'hsm/sw':>7}"]
        print("\n".join(lines), flush=True)
        for title, algorithm in OPS:
            configs = {"software": service_call(f"software-{algorithm}", algorithm),
                       "hsm": service_call(f"hsm-{algorithm}", algorithm),
                       "raw": raw[algorithm]}
            for threads in thread_counts:
                results: dict[str, list[Round]] = {c: [] for c in configs}
                for _ in range(rounds):
                    for name, op in configs.items():
                        op()  # warm: handle loaded, object found on this session
                        results[name].append(run_round(op, threads, seconds))
                med = {c: sorted(rs, key=lambda r: r.rate)[len(rs) // 2]
                       for c, rs in results.items()}
                for name in configs:
                    r = med[name]
                    ratio_raw = (f"{med['hsm'].rate / med['raw'].rate:8.2f}"
                                 if name == "hsm" else " " * 8)
                    ratio_sw = (f"{med['hsm'].rate / med['software'].rate:7.3f}"
                                if name == "hsm" else " " * 7)
                    line = (f"{title:28} {threads:>3} {name:9} {r.rate:9.0f} "
                            f"{statistics.median(r.latencies_us):9.0f} "
                            f"{pct(r.latencies_us, 99):9.0f} {ratio_raw} {ratio_sw}")
                    lines.append(line)
                    print(line, flush=True)
        lines.append(f"# load after={os.getloadavg()[0]:.2f}")
        print(lines[-1])
        token.close()
        engine.dispose()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
