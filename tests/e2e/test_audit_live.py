"""The audit trail of real servers: fail closed on a stalled or failing sink, best-effort
sinks that fail harmlessly, a deleted audit file noticed, chains continued across
restarts, one chain per worker process, and ``keykeeper audit verify|search|tail``."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from keykeeper.client import Client
from tests.support.server import ServerProcess, b64

KEYKEEPER = [sys.executable, "-m", "keykeeper"]


def _server(tmp_path: Path, name: str = "srv", **env: str) -> ServerProcess:
    data = tmp_path / name
    data.mkdir()
    return ServerProcess(data_dir=data, database_url=f"sqlite:///{data / 'keykeeper.db'}",
                         env={"KEYKEEPER_AUDIT_CHECKPOINT_SECONDS": "3600", **env})


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": server.root_token}
    return subprocess.run([*KEYKEEPER, *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def _alerts(server: ServerProcess, kind: str) -> float:
    for line in server.http.get("/metrics").text.splitlines():
        if line.startswith(f'keykeeper_audit_alerts_total{{kind="{kind}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_stalled_audit_file_fails_requests_closed(tmp_path: Path,
                                                    servers: list[ServerProcess]) -> None:
    """The audit file is a FIFO whose reader stops reading (Vault's hang): requests are
    refused within the timeout, the event loop stays free, and a key create does not
    happen; once the reader drains it, service resumes."""
    server = _server(tmp_path, KEYKEEPER_AUDIT_SINKS="file:required",
                     KEYKEEPER_AUDIT_TIMEOUT="1")
    fifo = server.data_dir / "audit.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    servers.append(server)
    server.start()
    server.init_and_unseal()
    server.create_key("before")
    statuses = []
    for _ in range(2000):  # fill the pipe (64 KiB) until the writer blocks
        r = server.post("/v1/keys/before/encrypt", {"plaintext": b64(b"x")})
        statuses.append(r.status_code)
        if r.status_code != 200:
            break
    assert statuses[-1] == 503 and r.json()["code"] == "unavailable"
    started = time.monotonic()
    assert server.get("/v1/sys/health").status_code == 200  # not audited: answers at once
    r = server.post("/v1/keys", {"name": "during"})
    assert (r.status_code, r.json()["code"]) == (503, "unavailable")
    assert time.monotonic() - started < 1.5  # a known stall fails fast
    drained = bytearray()

    def drain() -> None:
        os.set_blocking(reader, True)
        while chunk := os.read(reader, 65536):
            drained.extend(chunk)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 10
    while server.get("/v1/keys/during").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert server.post("/v1/keys/before/encrypt", {"plaintext": b64(b"y")}).status_code == 200
    server.stop()
    records = [json.loads(x) for x in bytes(drained).splitlines()]
    during = [x for x in records if x["operation"] == "key.create" and
              x.get("error_code") == "unavailable"]
    assert during and all(x.get("key_id") is None for x in during)
    assert "stalled" in " ".join(str(x.get("error_code")) for x in records)


class _Hook(BaseHTTPRequestHandler):
    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(type(self).status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_failing_required_sink_refuses_and_a_best_effort_one_does_not(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    hook = type("Hook", (_Hook,), {"status": 200})
    http = ThreadingHTTPServer(("127.0.0.1", 0), hook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_address[1]}/audit"
    try:
        strict = _server(tmp_path, "strict", KEYKEEPER_AUDIT_TIMEOUT="1",
                         KEYKEEPER_AUDIT_SINKS=f"file:best_effort,webhook:required:{url}")
        servers.append(strict)
        strict.start()
        strict.init_and_unseal()
        strict.create_key("k")
        hook.status = 500
        r = strict.post("/v1/keys", {"name": "refused"})
        assert (r.status_code, r.json()["code"]) == (503, "unavailable")
        r = strict.post("/v1/keys/k/encrypt", {"plaintext": b64(b"x")})
        assert r.status_code == 503
        hook.status = 200
        assert strict.get("/v1/keys/refused").status_code == 404
        assert _alerts(strict, "sink_failed") >= 1
    finally:
        http.shutdown()
        http.server_close()
    lenient = _server(tmp_path, "lenient", KEYKEEPER_AUDIT_SINKS=(
        "file:required,webhook:best_effort:http://127.0.0.1:1/nobody-listens"))
    servers.append(lenient)
    lenient.start()
    lenient.init_and_unseal()
    lenient.create_key("k")
    for _ in range(5):
        assert lenient.post("/v1/keys/k/encrypt", {"plaintext": b64(b"x")}).status_code == 200
    deadline = time.monotonic() + 5
    while _alerts(lenient, "sink_failed") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_deleted_file_restart_and_cli_verify(tmp_path: Path,
                                             servers: list[ServerProcess]) -> None:
    server = _server(tmp_path)
    servers.append(server)
    server.start()
    server.init_and_unseal()
    server.create_key("k")
    pem = tmp_path / "audit-key.pem"
    pem.write_text(server.get("/v1/audit/public-key").json()["public_key"])
    audit = server.data_dir / "audit.log"
    # Verified live: the server's head vouches for the unsigned tail.
    r = cli(server, "audit", "verify", str(audit))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK:" in r.stderr and "server head" in r.stderr
    # A deleted file is noticed at the next write, alerted, and replaced.
    first = audit.read_bytes()
    audit.unlink()
    assert server.post("/v1/keys/k/encrypt", {"plaintext": b64(b"x")}).status_code == 200
    assert _alerts(server, "deleted") == 1
    second = audit.read_bytes()
    assert b'"operation":"audit.alert"' in second and b'"error_code":"deleted"' in second
    server.stop()
    server.start()        # the chain continues from the file's tail
    server.unseal()
    assert server.post("/v1/keys/k/encrypt", {"plaintext": b64(b"y")}).status_code == 200
    server.stop()         # a shutdown checkpoint signs the end
    pieces = tmp_path / "pieces"
    pieces.mkdir()
    (pieces / "a.log").write_bytes(first)
    (pieces / "b.log").write_bytes(audit.read_bytes())
    r = cli(server, "audit", "verify", "--offline", "--public-key", str(pem),
            str(pieces / "b.log"), str(pieces / "a.log"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = cli(server, "audit", "verify", "--offline", "--public-key", str(pem),
            str(pieces / "b.log"))
    assert r.returncode == 1 and r.stdout.strip().splitlines()[0].endswith(
        "(earlier files not given? --from-checkpoint starts at the first checkpoint)")
    # Tampering: one line per problem, exit status 1, JSON for scripts.
    lines = (pieces / "b.log").read_bytes().splitlines(keepends=True)
    doc = json.loads(lines[3])
    doc["outcome"] = "success" if doc["outcome"] != "success" else "error"
    lines[3] = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    del lines[5]
    (pieces / "b.log").write_bytes(b"".join(lines))
    r = cli(server, "audit", "verify", "--offline", "--public-key", str(pem),
            str(pieces / "a.log"), str(pieces / "b.log"))
    assert r.returncode == 1
    out = r.stdout.strip().splitlines()
    assert any("b.log:4: modified" in x for x in out) and any("missing" in x for x in out)
    r = cli(server, "--format", "json", "audit", "verify", "--offline", "--public-key",
            str(pem), str(pieces / "a.log"), str(pieces / "b.log"))
    report = json.loads(r.stdout)
    assert report["ok"] is False and {p["kind"] for p in report["problems"]} >= {
        "modified", "missing"}


def test_cli_search_tail_and_sdk(tmp_path: Path, servers: list[ServerProcess]) -> None:
    server = _server(tmp_path)
    servers.append(server)
    server.start()
    server.init_and_unseal()
    name = "k-" + secrets.token_hex(3)
    server.create_key(name)
    for _ in range(3):
        server.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"x")})
    time.sleep(0.5)  # the database sink gathers records for up to 0.2 s
    r = cli(server, "--format", "json", "audit", "search", "--key", name, "--operation",
            "encrypt")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 3
    r = cli(server, "audit", "tail", "-n", "4")
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 5  # header + 4
    assert r.stdout.splitlines()[0].split()[:3] == ["TIME", "CHAIN", "SEQ"]
    follow = subprocess.Popen([*KEYKEEPER, "--format", "json", "audit", "tail", "-n", "1",
                               "--follow", "--interval", "0.2"],
                              env={**os.environ, "KEYKEEPER_ADDR": server.addr,
                                   "KEYKEEPER_TOKEN": server.root_token},
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        server.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"new")})
        seen = ""
        deadline = time.monotonic() + 10
        while '"operation":"encrypt"' not in seen.replace(" ", ""):
            assert time.monotonic() < deadline
            assert follow.stdout is not None
            seen += follow.stdout.readline()
    finally:
        follow.terminate()
        follow.wait(10)
    with Client(server.addr, server.root_token) as kk:
        records = list(kk.iter_audit(key=name, page_size=2))
        assert len(records) >= 5 and all(r.key_id == records[0].key_id for r in records)
        assert kk.audit_hash(server.root_token) == records[0].token_hmac
        assert kk.audit_head().seq >= records[0].seq
        assert kk.audit_verify().ok
        assert kk.audit_public_key().startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.slow
def test_each_worker_process_keeps_its_own_chain(tmp_path: Path) -> None:
    first = _server(tmp_path)
    first.start()
    first.init_and_unseal()
    first.create_key("k")
    first.stop()
    secret = first.data_dir / "unseal"
    secret.write_text(first.passphrase)
    code = ("from keykeeper.config import run_server; "
            f"run_server(listen='127.0.0.1:{first.port}', data_dir={str(first.data_dir)!r}, "
            f"database_url={first.database_url!r}, workers=2)")
    env = {**os.environ, "KEYKEEPER_UNSEAL_PASSPHRASE_FILE": str(secret),
           "KEYKEEPER_NODE_ID": "node-x", "KEYKEEPER_AUDIT_CHECKPOINT_SECONDS": "3600"}
    log = (first.data_dir / "workers.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline and proc.poll() is None
            try:
                if httpx.get(first.addr + "/v1/sys/health").json()["sealed"] is False:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {first.root_token}"}
        chains = set()
        deadline = time.monotonic() + 60
        while len(chains) < 2:  # each new connection may reach either worker
            assert time.monotonic() < deadline
            with httpx.Client(base_url=first.addr, headers=headers) as c:
                r = c.post("/v1/keys/k/encrypt", json={"plaintext": b64(b"x")})
                if r.status_code == 200:
                    chains.add(c.get("/v1/audit/head").json()["chain"])
        assert chains == {"node-x", "node-x.1"}
        report = httpx.post(first.addr + "/v1/audit/verify", json={}, headers=headers).json()
        assert report["ok"], report["problems"]
        assert {c["chain"] for c in report["chains"]} >= {"node-x", "node-x.1"}
        pem = tmp_path / "audit-key.pem"
        pem.write_text(httpx.get(first.addr + "/v1/audit/public-key",
                                 headers=headers).json()["public_key"])
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    files = sorted(first.data_dir.glob("audit*.log"))
    assert [f.name for f in files] == ["audit.1.log", "audit.log"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in files:
        shutil.copy(f, copy / f.name)
    r = cli(first, "audit", "verify", "--offline", "--public-key", str(pem),
            *map(str, copy.iterdir()))
    assert r.returncode == 0, r.stdout + r.stderr   # each worker signed its chain's end
    assert "chain node-x:" in r.stderr and "chain node-x.1:" in r.stderr
