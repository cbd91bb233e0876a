"""Where a KMIP Create, Get or Encrypt spends its time inside keykeeper, without TLS.

Builds the app exactly as the server does (keykeeper.config.build: SQLite by default, or
``--pg URL``; the default audit sinks), initialises and unseals it in a temporary
directory, sets it up over in-process ASGI calls as bench/kmip_servers.py does over HTTPS
(a role and grant for everything, a principal mapped to a client certificate, namespace
``kmip``, no approval rules), then drives kmip/processor.py's ``respond`` directly
with the lean client's prebuilt requests (bench/kmip_lean.py): decode, then respond
(process and encode, as kmip/server.py answers) -- the server's
per-message work minus TLS and sockets. Prints microseconds per operation and the top
frames (cProfile).

    .venv/bin/python bench/profile_kmip.py                  # create, get, encrypt
    .venv/bin/python bench/profile_kmip.py --ops create --top 40
    .venv/bin/python bench/profile_kmip.py --pg postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kmip_lean as lean
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keykeeper.config import Settings, build
from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv.codec import decode
from keykeeper.store.engine import make_engine, sqlite_url
from keykeeper.store.migrate import upgrade

TOKEN = "benchroot1"
CN = "kmip-bench"
PLAINTEXT = os.urandom(1024)


def _certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CN)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _rest(app: Any, method: str, path: str, body: object) -> None:
    async def go() -> tuple[int, bytes]:
        from profile_app import _scope
        sent = False
        status = 0
        out: list[bytes] = []
        data = json.dumps(body).encode()

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                out.append(message.get("body", b""))

        scope = _scope(path)
        scope["method"] = method
        scope["headers"] = [*scope["headers"], (b"content-length", str(len(data)).encode())]
        await app(scope, receive, send)
        return status, b"".join(out)

    status, out = asyncio.run(go())
    if status not in (200, 201, 202):
        raise RuntimeError(f"{method} {path}: {status} {out[:300]!r}")


def _setup(tmp: Path, pg: str | None) -> Processor:
    url = pg or sqlite_url(tmp)
    settings = Settings(data_dir=tmp, database_url=url, audit_file=tmp / "audit.log")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app, services = build(settings)
    services.system.init("bench passphrase 0123456789", root_token=TOKEN)
    services.system.unseal("bench passphrase 0123456789")
    for path, body in (
            ("/v1/roles", {"name": "kmip-bench", "operations": ["*"],
                           "description": "KMIP benchmark client"}),
            ("/v1/grants", {"grantee": "role:kmip-bench", "operations": ["*"],
                            "namespace": "*"}),
            ("/v1/principals", {"name": CN, "kind": "service", "roles": ["kmip-bench"],
                                "certificate_subjects": [f"CN={CN}"]}),
            ("/v1/namespaces", {"name": "kmip"})):
        _rest(app, "POST", path, body)
    _rest(app, "PUT", "/v1/policies/approval", {"rules": []})
    time.sleep(1.2)  # the policy snapshot's TTL
    return Processor(services, KmipSettings(namespace="kmip", extractable_default=True))


def _runner(processor: Processor, cert: bytes) -> Callable[[bytes], bytes]:
    auth = processor.services.auth
    peer = Peer("kmip", "127.0.0.1:1", lambda: auth.cached_certificate(cert)
                or auth.authenticate_certificate(cert))

    def run(data: bytes) -> bytes:
        out = processor.respond(decode(data), peer)  # as kmip/server.py answers
        answer = decode(out)
        batch = answer.find(lean.BATCH_ITEM)
        status = batch.find(lean.RESULT_STATUS) if batch is not None else None
        if status is None or status.value != lean.SUCCESS:
            raise RuntimeError(lean.describe_failure(answer))
        return out
    return run


@contextlib.contextmanager
def _pg(wanted: bool) -> Iterator[str | None]:
    """A fresh schema in the test PostgreSQL database (dropped after), or None."""
    if not wanted:
        yield None
        return
    import psycopg
    dsn = os.environ.get("KEYKEEPER_TEST_PG",
                         "host=127.0.0.1 port=5432 dbname=test user=postgres")
    schema = "kk_bench_" + secrets.token_hex(4)
    params = dict(p.split("=", 1) for p in dsn.split())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (f"postgresql+psycopg://{params.get('user', 'postgres')}@{params['host']}:"
               f"{params['port']}/{params['dbname']}?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="create,get,encrypt")
    parser.add_argument("-n", type=int, default=0, help="operations (default 300 / 3000)")
    parser.add_argument("--top", type=int, default=25, help="frames to print")
    parser.add_argument("--pg", action="store_true",
                        help="PostgreSQL (a new schema in KEYKEEPER_TEST_PG's database, "
                        "default host=127.0.0.1 port=5432 dbname=test user=postgres)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--callers", default="",
                        help="also print who calls the functions matching this regex")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kk-kmip-profile-") as tmp, _pg(args.pg) as pg:
        processor = _setup(Path(tmp), pg)
        run = _runner(processor, _certificate())
        uid = lean.response_uid(decode(run(lean.create_aes256())))
        run(lean.activate(uid))
        requests = {"create": lean.create_aes256(), "get": lean.get(uid),
                    "encrypt": lean.encrypt_cbc(uid, PLAINTEXT)}
        for op in args.ops.split(","):
            data = requests[op]
            n = args.n or (300 if op == "create" else 3000)
            for _ in range(max(n // 10, 5)):
                run(data)
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                run(data)
            wall = (time.perf_counter() - start) / n
            cpu = (time.process_time() - cpu) / n
            print(f"{op:<8} {n:6d} ops  {wall * 1e6:9.1f} us wall  {cpu * 1e6:9.1f} us cpu "
                  "per op (decode + respond + client decode)")
            if args.no_profile:
                continue
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            for _ in range(n):
                run(data)
            profiler.disable()
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            if args.callers:
                stats.print_callers(args.callers)
            print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
