"""The three KMIP servers bench/kmip_ops.py measures, each a subprocess in its own process
group (its CPU time is read from /proc for that group):

* keykeeper: ``run_server`` (uvicorn REST over HTTPS) with the KMIP listener
  (``KEYKEEPER_KMIP_LISTEN``), SQLite in a temporary directory, default audit sinks,
  initialised and unsealed over REST; the client certificate maps to a principal whose
  role may do everything on every namespace (the recipe of tests/kmip/conftest.py), and
  the approval policy's default rules are removed (Get of key material is otherwise under
  dual control, which a KMIP Get cannot wait for).
* PyKMIP: ``kmip.services.server`` (PyKMIP's own server) with its own config file, its
  SQLite database in the temporary directory, TLS 1.2 (its "TLS1.2" auth suite) on the
  same dev-certs certificates, log level WARNING.
* echo: bench/kmip_lean.py's ceiling server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import stop_group

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLIENT_CN = "kmip-bench"
NAMESPACE = "kmip-bench"


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def server(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server-key.pem"

    @property
    def client(self) -> Path:
        return self.dir / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.dir / "client-key.pem"


@dataclass
class Running:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    rest_url: str = ""     # keykeeper only: its REST listener and root token
    token: str = ""

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server's process group so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            fields = text[text.rfind(")") + 2:].split()
            if int(fields[2]) == self.proc.pid:
                total += int(fields[11]) + int(fields[12])
        return total / ticks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dev_certs(out: Path) -> Pki:
    """The PKI from ``keykeeper dev-certs`` (ECDSA P-256), client CN ``kmip-bench``."""
    subprocess.run([PYTHON, "-c", "from keykeeper.cli.main import main; main()", "dev-certs",
                    "--out", str(out), "--client-name", CLIENT_CN],
                   check=True, capture_output=True, cwd=ROOT)
    return Pki(out)


def _wait_tls(running: Running, pki: Pki, timeout: float = 60.0) -> None:
    """Until a TLS handshake (with the client certificate) succeeds on the port."""
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.client), str(pki.client_key))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise RuntimeError(f"{running.name} exited early; see {running.log}:\n"
                               + running.log.read_text()[-3000:])
        try:
            with socket.create_connection(("127.0.0.1", running.port), timeout=2) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                return
        except (OSError, ssl.SSLError):
            time.sleep(0.2)
    raise RuntimeError(f"{running.name} not ready after {timeout:.0f} s; see {running.log}")


@contextlib.contextmanager
def _spawn(name: str, cmd: list[str], port: int, workdir: Path,
           env: dict[str, str] | None = None) -> Iterator[Running]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, **(env or {})})
    try:
        yield Running(name, port, proc, log)
    finally:
        stop_group(proc)


@contextlib.contextmanager
def pykmip_server(pki: Pki, workdir: Path, log_level: str = "WARNING") -> Iterator[Running]:
    """PyKMIP's own server; ``log_level`` WARNING (quiet: gives it the benefit) or INFO
    (its default: it logs every request)."""
    port = free_port()
    (workdir / "pykmip-policies").mkdir(exist_ok=True)
    conf = workdir / "pykmip-server.conf"
    conf.write_text(
        "[server]\nhostname=127.0.0.1\n"
        f"port={port}\ncertificate_path={pki.server}\nkey_path={pki.server_key}\n"
        f"ca_path={pki.ca}\nauth_suite=TLS1.2\nenable_tls_client_auth=True\n"
        f"logging_level={log_level}\ndatabase_path={workdir / 'pykmip.db'}\n"
        f"policy_path={workdir / 'pykmip-policies'}\n")
    cmd = [PYTHON, "-W", "ignore", "-c",
           "from kmip.services.server.server import main; main()",
           "-f", str(conf), "-l", str(workdir / "pykmip-server-own.log")]
    with _spawn("pykmip", cmd, port, workdir) as running:
        _wait_tls(running, pki)
        yield running


@contextlib.contextmanager
def echo_server(pki: Pki, workdir: Path, replies: Path | None = None) -> Iterator[Running]:
    port = free_port()
    cmd = [PYTHON, str(ROOT / "bench" / "kmip_lean.py"), "echo", str(port), str(pki.server),
           str(pki.server_key), str(pki.ca)] + ([str(replies)] if replies else [])
    with _spawn("echo-canned" if replies else "echo", cmd, port, workdir) as running:
        _wait_tls(running, pki)
        yield running


def _rest_setup(base: str, pki: Pki, proc: subprocess.Popen[bytes], log: Path) -> str:
    """Initialise, unseal, map the client certificate; return the root token."""
    verify = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(base_url=base, timeout=30.0, verify=verify) as http:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"keykeeper exited early; see {log}:\n"
                                   + log.read_text()[-3000:])
            try:
                if http.get("/v1/sys/health").status_code < 600:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"keykeeper not ready; see {log}")
            time.sleep(0.2)
        init = http.post("/v1/sys/init", json={})
        init.raise_for_status()
        token, passphrase = init.json()["root_token"], init.json()["unseal_passphrase"]
        http.post("/v1/sys/unseal", json={"passphrase": passphrase}).raise_for_status()
        http.headers["Authorization"] = f"Bearer {token}"
        for path, body in (
                ("/v1/roles", {"name": "kmip-bench", "operations": ["*"],
                               "description": "KMIP benchmark client"}),
                ("/v1/grants", {"grantee": "role:kmip-bench", "operations": ["*"],
                                "namespace": "*"}),
                ("/v1/principals", {"name": CLIENT_CN, "kind": "service",
                                    "roles": ["kmip-bench"],
                                    "certificate_subjects": [f"CN={CLIENT_CN}"]}),
                ("/v1/namespaces", {"name": NAMESPACE})):
            r = http.post(path, json=body)
            if r.status_code not in (200, 201):
                raise RuntimeError(f"keykeeper setup {path}: {r.status_code} {r.text}")
        # The default approval rules put key.export under dual control, which a KMIP Get
        # of key material cannot wait for (PyKMIP's server has no such policy).
        r = http.put("/v1/policies/approval", json={"rules": []})
        if r.status_code not in (200, 202):
            raise RuntimeError(f"keykeeper setup approval policy: {r.status_code} {r.text}")
    time.sleep(1.2)  # the policy snapshot's TTL
    return str(token)


def rest_key(running: Running, pki: Pki) -> str:
    """An AES-256 key made over REST (when KMIP Create is not there yet): its KMIP UID."""
    verify = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(base_url=running.rest_url, timeout=30.0, verify=verify,
                      headers={"Authorization": f"Bearer {running.token}"}) as http:
        r = http.post("/v1/keys", json={"name": "kmip-bench-rest", "algorithm": "AES_256_GCM",
                                        "namespace": NAMESPACE})
        if r.status_code != 201:
            raise RuntimeError(f"REST key create: {r.status_code} {r.text}")
        return f"{r.json()['id']}/{r.json()['primary_version']}"


@contextlib.contextmanager
def keykeeper_server(pki: Pki, workdir: Path) -> Iterator[Running]:
    rest_port, kmip_port = free_port(), free_port()
    data_dir = workdir / "keykeeper-data"
    data_dir.mkdir(exist_ok=True)
    code = ("from keykeeper.config import run_server; "
            f"run_server(listen='127.0.0.1:{rest_port}', data_dir={str(data_dir)!r}, "
            f"database_url={'sqlite:///' + str(data_dir / 'kk.db')!r})")
    env = {"KEYKEEPER_TLS_CERT_FILE": str(pki.server),
           "KEYKEEPER_TLS_KEY_FILE": str(pki.server_key),
           "KEYKEEPER_TLS_CLIENT_CA_FILE": str(pki.ca),
           "KEYKEEPER_TLS_CLIENT_AUTH": "optional",
           "KEYKEEPER_KMIP_LISTEN": f"127.0.0.1:{kmip_port}",
           "KEYKEEPER_KMIP_NAMESPACE": NAMESPACE,
           "KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT": "true",
           "KEYKEEPER_SCHEDULER": "off"}
    with _spawn("keykeeper", [PYTHON, "-c", code], kmip_port, workdir, env) as running:
        running.rest_url = f"https://127.0.0.1:{rest_port}"
        running.token = _rest_setup(running.rest_url, pki, running.proc, running.log)
        _wait_tls(running, pki, timeout=30)
        yield running
