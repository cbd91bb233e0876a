"""The audit trail of real servers: fail closed on a stalled or failing sink, best-effort
sinks that fail harmlessly, a deleted audit file noticed, an audit path that cannot be
opened refused until it can, chains continued across restarts, one chain per worker
process, and ``keykeeper audit verify|search|tail``."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
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
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(f'keykeeper_audit_alerts_total{{kind="{kind}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class _TricklingHook(BaseHTTPRequestHandler):
    """A webhook receiver that, while ``stall`` is set, answers one header byte every
    0.25 s: the client's read timeout never fires, so the write runs until released (a
    hung receiver that no timeout ends)."""

    stall: threading.Event

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while self.stall.is_set():
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(0.25)
        self.wfile.write(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


def test_a_stalled_required_sink_fails_requests_closed(tmp_path: Path,
                                                       servers: list[ServerProcess]) -> None:
    """The required sink stops answering (Vault's hang): requests are refused within the
    timeout, the event loop stays free, and a key create does not happen; once the sink
    answers again, service resumes."""
    hook = type("Hook", (_TricklingHook,), {"stall": threading.Event()})
    http = ThreadingHTTPServer(("127.0.0.1", 0), hook)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_address[1]}/audit"
    try:
        server = _server(tmp_path, KEYKEEPER_AUDIT_TIMEOUT="1",
                         KEYKEEPER_AUDIT_SINKS=f"file:best_effort,webhook:required:{url}")
        servers.append(server)
        server.start()
        server.init_and_unseal()
        server.create_key("before")
        hook.stall.set()
        r = server.post("/v1/keys/before/encrypt", {"plaintext": b64(b"x")})
        assert (r.status_code, r.json()["code"]) == (503, "unavailable")
        started = time.monotonic()
        assert server.get("/v1/sys/health").status_code == 200  # not audited: at once
        r = server.post("/v1/keys", {"name": "during"})
        assert (r.status_code, r.json()["code"]) == (503, "unavailable")
        assert time.monotonic() - started < 1.5  # a known stall fails fast
        hook.stall.clear()
        deadline = time.monotonic() + 10
        while server.get("/v1/keys/during").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert server.post("/v1/keys/before/encrypt",
                           {"plaintext": b64(b"y")}).status_code == 200
        server.stop()
    finally:
        hook.stall.clear()
        http.shutdown()
        http.server_close()
    records = [json.loads(x) for x in (server.data_dir / "audit.log").read_bytes().splitlines()]
    during = [x for x in records if x["operation"] == "key.create" and
              x.get("error_code") == "unavailable"]
    assert during and all(x.get("key_id") is None for x in during)
    assert "stalled" in " ".join(str(x.get("error_code")) for x in records)


def _fresh(server: ServerProcess, method: str, path: str,
           body: object = None) -> httpx.Response:
    """One request on a new connection (the server takes a new descriptor for it)."""
    with httpx.Client(base_url=server.addr, timeout=10, headers={
            "Authorization": f"Bearer {server.root_token}"}) as c:
        return c.request(method, path, json=body)


def _received(spy: socket.socket) -> bytes:
    spy.settimeout(0.3)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := spy.recv(65536):
            data += chunk
    spy.close()
    return data


def test_an_audit_path_that_cannot_be_opened_fails_closed_and_recovers(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    """Breaker: with a directory in place of the audit file, the sink kept the number of
    the descriptor it had closed; the server reused it for client sockets, wrote audit
    lines into them and closed them, and answered requests with no record. A FIFO hung
    the writer for good; a symlink to /dev/null swallowed records; and the server's
    verify answered ok once the file was gone. Now: 503 while the path cannot be opened,
    recovery by itself, no client ever receives audit bytes."""
    server = _server(tmp_path, KEYKEEPER_AUDIT_TIMEOUT="1")
    servers.append(server)
    server.start()
    server.init_and_unseal()
    server.create_key("k")
    audit = server.data_dir / "audit.log"
    audit.unlink()                       # gone: the server's own verify must say so
    report = server.post("/v1/audit/verify", {}).json()
    assert report["ok"] is False and [p["kind"] for p in report["problems"]] == ["truncated"]

    def encrypt() -> int:
        return _fresh(server, "POST", "/v1/keys/k/encrypt",
                      {"plaintext": b64(b"x")}).status_code

    spies: list[socket.socket] = []
    blockers: dict[str, Callable[[], None]] = {
        "directory": audit.mkdir, "fifo": lambda: os.mkfifo(audit),
        "devnull": lambda: os.symlink("/dev/null", audit)}
    for name, block in blockers.items():
        audit.unlink()
        block()
        for _ in range(2):
            spies.append(socket.create_connection(("127.0.0.1", server.port)))
            started = time.monotonic()
            assert encrypt() == 503, name
            assert time.monotonic() - started < 1.0, name   # refused at once, no hang
        r = _fresh(server, "POST", "/v1/keys", {"name": f"during-{name}"})
        assert (r.status_code, r.json()["code"]) == (503, "unavailable")
        audit.rmdir() if name == "directory" else audit.unlink()
        for _ in range(3):               # new connections: new descriptors
            spies.append(socket.create_connection(("127.0.0.1", server.port)))
            assert encrypt() == 200, name
        assert server.get(f"/v1/keys/during-{name}").status_code == 404
        assert audit.is_file() and not audit.is_symlink()
    assert _alerts(server, "unwritable") == 3 and _alerts(server, "reopened") == 3
    for spy in spies:
        assert b"chain" not in _received(spy)
    records = [json.loads(x) for x in audit.read_bytes().splitlines()]
    first = records[0]                   # a fresh file continues the chain
    assert first["prev"] == server.get(f"/v1/audit/head?seq={first['seq'] - 1}").json()["hash"]
    assert [r["seq"] for r in records] == list(range(first["seq"], records[-1]["seq"] + 1))
    reopened = [r for r in records if r.get("error_code") == "reopened"]
    assert reopened and "is a symbolic link" in str(reopened[0]["detail"])


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


def test_verifying_a_copy_of_a_live_audit_file(tmp_path: Path,
                                               servers: list[ServerProcess]) -> None:
    """A copy checked against the server: clean if the server wrote nothing since (verify's
    own requests come after the heads it reads), precise if it did; and checkpoint, copy,
    verify the copy offline up to the checkpoint."""
    server = _server(tmp_path)
    servers.append(server)
    server.start()
    server.init_and_unseal()
    server.create_key("k")
    pem = tmp_path / "audit-key.pem"
    pem.write_text(server.get("/v1/audit/public-key").json()["public_key"])
    audit = server.data_dir / "audit.log"
    copy = tmp_path / "copy.log"
    shutil.copy(audit, copy)
    end = json.loads(copy.read_bytes().splitlines()[-1])["seq"]
    r = cli(server, "audit", "verify", str(copy))     # nothing written since the copy
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"server head seq {end} matches" in r.stderr
    r = cli(server, "audit", "verify", str(copy))     # the last verify's records since
    assert r.returncode == 1
    (line,) = r.stdout.strip().splitlines()
    assert f"truncated: the files end at seq {end}; the server had written chain " in line
    assert " records after the end of these files (seq " in line
    assert "-- truncated, or a copy taken before they were written" in line
    assert "server head" not in r.stderr and f"seq {end} matches the server's record" in \
        r.stderr and "(past the end of these files)" in r.stderr
    # Checkpoint, copy (more is written meanwhile and after), verify the copy offline.
    r = cli(server, "--format", "json", "audit", "checkpoint")
    assert r.returncode == 0, r.stderr
    checkpoint = json.loads(r.stdout)["seq"]
    server.post("/v1/keys/k/encrypt", {"plaintext": b64(b"x")})
    shutil.copy(audit, copy)
    server.post("/v1/keys/k/encrypt", {"plaintext": b64(b"y")})
    offline = ("audit", "verify", "--offline", "--public-key", str(pem))
    r = cli(server, *offline, str(copy))
    assert r.returncode == 1 and "uncovered" in r.stdout
    assert "keykeeper audit checkpoint" in r.stdout
    r = cli(server, *offline, "--to-checkpoint", str(copy))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"signed through seq {checkpoint}" in r.stderr
    assert f"2 records after the last checkpoint (seq {checkpoint}," in r.stderr
    r = cli(server, "audit", "verify", "--to-checkpoint", str(copy))  # online: key only
    assert r.returncode == 0, r.stdout + r.stderr


def test_tail_follow_does_not_show_its_own_searches(tmp_path: Path,
                                                    servers: list[ServerProcess]) -> None:
    server = _server(tmp_path)
    servers.append(server)
    server.start()
    server.init_and_unseal()
    server.create_key("k")
    follow = subprocess.Popen([*KEYKEEPER, "--format", "json", "audit", "tail", "-n", "1",
                               "--follow", "--interval", "0.2"],
                              env={**os.environ, "KEYKEEPER_ADDR": server.addr,
                                   "KEYKEEPER_TOKEN": server.root_token},
                              stdout=subprocess.PIPE, text=True)
    def searches() -> int:  # the follower's polls, as the audit log records them
        return sum(1 for line in (server.data_dir / "audit.log").read_bytes().splitlines()
                   if json.loads(line)["operation"] == "audit.search")

    def wait_for(n: int) -> None:  # by outcome, not by time: CI machines may be loaded
        deadline = time.monotonic() + 60
        while searches() < n and time.monotonic() < deadline:
            time.sleep(0.1)

    try:
        wait_for(2)                                 # the follower is up and polling
        server.post("/v1/keys/k/encrypt", {"plaintext": b64(b"x")})
        wait_for(searches() + 6)                    # and has polled after the encrypt
    finally:
        follow.terminate()
        out, _ = follow.communicate(timeout=10)
    followed = [json.loads(x) for x in out.splitlines() if x.startswith('{"chain"')]
    assert [x["operation"] for x in followed] == ["encrypt"]
    polls = [x for x in (json.loads(x) for x in (server.data_dir / "audit.log")
                         .read_bytes().splitlines()) if x["operation"] == "audit.search"]
    assert len(polls) >= 8             # each poll is still recorded in the chain
