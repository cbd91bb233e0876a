"""Where an encrypt request spends its time inside keykeeper's ASGI app, without HTTP.

Builds the app exactly as the server does (keykeeper.config.build: SQLite, audit file,
key cache, metrics), initialises and unseals it in a temporary directory, then drives
ASGI calls in-process: no socket, no h11, so the numbers are the app's own cost and
barely depend on other load on the machine. The same loop over bench/ceiling_app.py
gives the reference. Prints microseconds per request and the top frames (cProfile).

    .venv/bin/python bench/profile_app.py                 # single 1 KiB encrypt
    .venv/bin/python bench/profile_app.py --batch         # 1,000-item batch encrypt
    .venv/bin/python bench/profile_app.py --decrypt
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ceiling_app

from keykeeper.config import Settings, build
from keykeeper.store.engine import make_engine, sqlite_url
from keykeeper.store.migrate import upgrade

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
TOKEN = "benchroot1"


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8200),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                        (b"authorization", f"Bearer {TOKEN}".encode())]}


async def _call(app: App, path: str, body: bytes) -> tuple[int, bytes]:
    sent = False
    status = 0
    out: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            out.append(message.get("body", b""))

    scope = _scope(path)
    scope["headers"] = [*scope["headers"], (b"content-length", str(len(body)).encode())]
    await app(scope, receive, send)
    return status, b"".join(out)


async def _loop(app: App, path: str, body: bytes, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        status, _ = await _call(app, path, body)
        if status != 200:
            raise RuntimeError(f"status {status}")
    return (time.perf_counter() - start) / n


def _keykeeper_app(data_dir: Path) -> Any:
    settings = Settings(data_dir=data_dir, database_url=sqlite_url(data_dir),
                        audit_file=data_dir / "audit.log")
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    app, services = build(settings)
    services.system.init("bench passphrase 0123456789", root_token=TOKEN)
    services.system.unseal("bench passphrase 0123456789")
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", action="store_true", help="1,000-item batch encrypt")
    parser.add_argument("--decrypt", action="store_true", help="single decrypt")
    parser.add_argument("-n", type=int, default=0, help="requests (default 20000 or 40)")
    parser.add_argument("--top", type=int, default=25, help="frames to print")
    args = parser.parse_args()
    n = args.n or (40 if args.batch else 20000)
    pt = base64.b64encode(os.urandom(1024)).decode()
    body = json.dumps({"items": [{"plaintext": pt}] * 1000} if args.batch
                      else {"plaintext": pt}).encode()
    with tempfile.TemporaryDirectory(prefix="kk-profile-") as tmp:
        app = _keykeeper_app(Path(tmp))
        run = asyncio.run
        status, out = run(_call(app, "/v1/keys", b'{"name":"k","purpose":"encrypt"}'))
        assert status == 201, out
        path = "/v1/keys/k/encrypt"
        if args.decrypt:
            _, out = run(_call(app, path, json.dumps({"plaintext": pt}).encode()))
            body = json.dumps({"ciphertext": json.loads(out)["ciphertext"]}).encode()
            path = "/v1/keys/k/decrypt"
        run(_loop(app, path, body, max(n // 10, 5)))          # warm caches
        run(_loop(ceiling_app.app, path, body, max(n // 10, 5)))
        ceiling = run(_loop(ceiling_app.app, path, body, n))
        starlette = run(_loop(ceiling_app.starlette_app, path, body, n))
        plain = run(_loop(app, path, body, n))
        profiler = cProfile.Profile()
        profiler.enable()
        run(_loop(app, path, body, n))
        profiler.disable()
    per = "item" if args.batch else "request"
    scale = 1000 if args.batch else 1
    print(f"{path} body {len(body):,} bytes, {n:,} requests, in-process ASGI (no HTTP server)")
    for name, seconds in (("bare ASGI echo", ceiling), ("Starlette + msgspec echo", starlette),
                          ("keykeeper", plain)):
        print(f"  {name:<26} {seconds * 1e6 / scale:9.2f} us per {per}")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
