"""Shared plumbing for the benchmarks: start and stop servers, run wrk, parse its report.

Servers run in their own process group (``start_new_session``) so that stopping one
stops its uvicorn workers too, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
TOKEN = "benchroot1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_wrk() -> str:
    """The path of wrk; installs Debian's package when run as root, else explains how."""
    path = shutil.which("wrk")
    if path:
        return path
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: apt-get install -y wrk", file=sys.stderr, flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)
        path = shutil.which("wrk")
        if path:
            return path
    sys.exit("wrk is required: install it with `sudo apt-get install wrk` (Debian/Ubuntu) "
             "or from https://github.com/wg/wrk, then run `make bench` again")


# -- servers ---------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    data_dir: Path | None = None


def _wait(url: str, probe: Callable[[httpx.Client], bool], proc: subprocess.Popen[bytes],
          log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {log}:\n{log.read_text()[-2000:]}")
            try:
                if probe(client):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} not ready after {timeout:.0f} s; see {log}")


@contextlib.contextmanager
def _process(name: str, cmd: list[str], port: int, probe: Callable[[httpx.Client], bool],
             data_dir: Path | None = None, workdir: Path | None = None) -> Iterator[Server]:
    logdir = Path(tempfile.mkdtemp(prefix="kk-bench-log-"))
    log = logdir / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir or ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(url, probe, proc, log)
        yield Server(name, url, proc, log, data_dir)
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started with ``start_new_session=True`` and its children: SIGTERM to
    the process group, SIGKILL after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def reference_server(app: str, workers: int,
                     nodelay: bool = False) -> contextlib.AbstractContextManager[Server]:
    """``ceiling_app:app`` or ``ceiling_app:starlette_app`` on keykeeper's uvicorn settings
    (bench/serve_reference.py); ``nodelay`` adds TCP_NODELAY to a multi-worker listener."""
    port = free_port()
    cmd = [PYTHON, str(BENCH / "serve_reference.py"), app, str(port), str(workers)]
    if nodelay:
        cmd.append("--nodelay")

    def probe(client: httpx.Client) -> bool:
        return client.post("/v1/keys/k/encrypt", content=b"{}").status_code == 200

    return _process(app.split(":")[1] + ("-nodelay" if nodelay else ""), cmd, port, probe)


@contextlib.contextmanager
def keykeeper_server(workers: int) -> Iterator[Server]:
    """A dev-mode keykeeper (SQLite, audit file, key cache on) in a fresh data directory."""
    data_dir = Path(tempfile.mkdtemp(prefix="kk-bench-data-"))
    port = free_port()
    code = ("from keykeeper.config import run_server; "
            f"run_server(listen='127.0.0.1:{port}', dev=True, dev_root_token={TOKEN!r}, "
            f"data_dir={str(data_dir)!r}, workers={workers})")
    streak = [0]

    def probe(client: httpx.Client) -> bool:
        # Each worker unseals itself (Argon2id, ~0.3 s); wait for several in a row.
        with httpx.Client(base_url=client.base_url, timeout=2.0) as fresh:
            ok = fresh.get("/v1/sys/health").json().get("sealed") is False
        streak[0] = streak[0] + 1 if ok else 0
        return streak[0] >= 4 * workers

    try:
        with _process(f"keykeeper-w{workers}", [PYTHON, "-c", code], port, probe,
                      data_dir=data_dir) as server:
            yield server
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid`` (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# -- wrk -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int           # non-2xx responses plus socket errors
    wrk_cpu: float        # cores the load generator itself used on average


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LUA = """\
local f = assert(io.open({body!r}, "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def _percentile(report: str, pct: str) -> float:
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", report, re.MULTILINE)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else float("nan")


def parse_wrk(report: str, seconds: float, cpu: float) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", report)
    total = re.search(r"(\d+) requests in", report)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     report)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in sock.groups()) if sock else 0)
    return WrkResult(requests=int(total.group(1)) if total else 0,
                     rps=float(rps.group(1)) if rps else 0.0,
                     p50_ms=_percentile(report, "50"), p99_ms=_percentile(report, "99"),
                     errors=errors, wrk_cpu=cpu / seconds if seconds else 0.0)


def wrk(wrk_path: str, url: str, body: bytes, *, seconds: float, connections: int,
        threads: int, timeout: float = 10.0) -> WrkResult:
    """POST ``body`` to ``url`` for ``seconds`` with wrk; returns the parsed report."""
    with tempfile.TemporaryDirectory(prefix="kk-wrk-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA.format(body=str(body_file), token=TOKEN))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [wrk_path, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
             "--timeout", f"{timeout:g}s", "--latency", "-s", str(script), url],
            capture_output=True, text=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_wrk(done.stdout, seconds, cpu)
