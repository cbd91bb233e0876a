"""TLS hints a new user needs (issue 6 polish): a client certificate without its key names
the key option (CLI and SDK); a client certificate the server refuses gets a hint, not a
bare RemoteProtocolError; dev-certs prints a complete server line for the port asked
for; the dev banner tells clients which CA to trust."""

from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

import pytest

from keykeeper.client import Client
from keykeeper.errors import InvalidArgument
from tests.support.server import free_port
from tests.tls.conftest import KEYKEEPER, Pki, TlsServer, dev_certs


def test_a_client_certificate_without_its_key_names_the_key_option(
        mtls_server: TlsServer, pki: Pki) -> None:
    done = mtls_server.cli("status", env={"KEYKEEPER_CLIENT_KEY": ""})
    assert done.returncode == 1, done.stderr
    assert "holds no private key" in done.stderr and "--client-key" in done.stderr
    assert "PEM lib" not in done.stderr
    with pytest.raises(InvalidArgument, match="KEYKEEPER_CLIENT_KEY"):
        Client(mtls_server.addr, verify=str(pki.ca), cert=str(pki.client))


def test_a_refused_client_certificate_gets_a_hint(mtls_server: TlsServer, pki: Pki) -> None:
    # The server's own certificate is not for client authentication.
    done = mtls_server.cli("status", env={"KEYKEEPER_CLIENT_CERT": str(pki.server),
                                          "KEYKEEPER_CLIENT_KEY": str(pki.server_key)})
    assert done.returncode == 3, done.stderr
    line = done.stderr.strip()
    assert line.startswith("error: unavailable: cannot reach keykeeper"), line
    assert "RemoteProtocolError; the server may have refused the client certificate" in line
    assert "allow client authentication" in line


def test_dev_certs_prints_a_complete_server_line_for_its_port(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from keykeeper.cli.main import app

    res = CliRunner().invoke(app, ["dev-certs", "--out", str(tmp_path / "pki"), "--port",
                                   "8250"])
    assert res.exit_code == 0, res.output
    server_line = next(line.strip() for line in res.stdout.splitlines()
                       if line.strip().startswith("keykeeper server "))
    assert "--listen 127.0.0.1:8250" in server_line
    assert f"--data-dir {tmp_path / 'data'}" in server_line   # beside the PKI, not in it
    assert "add --kmip-listen 127.0.0.1:5696 to the server line" in res.stdout
    assert "export KEYKEEPER_ADDR=https://localhost:8250" in res.stdout
    assert "the one the server listens on" in res.stdout


def test_the_dev_banner_exports_the_ca(tmp_path: Path) -> None:
    pki = dev_certs(tmp_path / "pki")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYKEEPER_")}
    proc = subprocess.Popen(
        [*KEYKEEPER, "server", "--dev", "--listen", f"127.0.0.1:{port}", "--tls-cert",
         str(pki.server), "--tls-key", str(pki.server_key)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    banner = ""
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while "export KEYKEEPER_TOKEN" not in banner and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 1.0)
            if ready:
                line = proc.stderr.readline()
                if not line:
                    break
                banner += line
        banner += proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    assert f"export KEYKEEPER_ADDR=https://127.0.0.1:{port}" in banner, banner
    assert f"export KEYKEEPER_CACERT={pki.ca.resolve()}" in banner, banner
