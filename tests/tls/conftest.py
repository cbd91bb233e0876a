"""Real TLS servers and certificates for the TLS tests.

The certificates come from ``keykeeper dev-certs`` itself (run through the CLI), plus a
second, unrelated CA and an expired client certificate issued by the first CA. TLS sits
below storage, so these servers run on SQLite only.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from keykeeper.cli._x509 import Issued, issue_client, key_pem
from keykeeper.cli.main import app
from tests.support.server import ServerProcess

KEYKEEPER = [sys.executable, "-c", "from keykeeper.cli.main import main; main()"]
FILES_MODES = {"ca.pem": 0o644, "ca-key.pem": 0o600, "server.pem": 0o644,
               "server-key.pem": 0o600, "client.pem": 0o644, "client-key.pem": 0o600}


@dataclass(frozen=True)
class Pki:
    """The files ``keykeeper dev-certs`` writes."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

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

    def client_context(self, *, cert: tuple[Path, Path] | None = None,
                       with_cert: bool = True) -> ssl.SSLContext:
        """A client context trusting this CA, with this PKI's client certificate (or
        ``cert``, or none)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if cert is not None:
            ctx.load_cert_chain(*cert)
        elif with_cert:
            ctx.load_cert_chain(self.client, self.client_key)
        return ctx


def dev_certs(out: Path, *extra: str) -> Pki:
    result = CliRunner().invoke(app, ["dev-certs", "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return Pki(out)


def write_issued(issued: Issued, directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(key_pem(issued.key))
    key.chmod(0o600)
    return cert, key


def load_ca(pki: Pki) -> Issued:
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    return Issued(cert, key)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return dev_certs(tmp_path_factory.mktemp("pki"), "--client-name", "tls-app")


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA, with a client certificate of the same subject as ``pki``'s."""
    return dev_certs(tmp_path_factory.mktemp("other-pki"), "--client-name", "tls-app")


@pytest.fixture(scope="session")
def expired_client(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A client certificate from ``pki``'s CA, same subject, expired 29 days ago."""
    issued = issue_client(load_ca(pki), "tls-app", days=1,
                          now=datetime.now(UTC) - timedelta(days=30))
    return write_issued(issued, tmp_path_factory.mktemp("expired"), "client")


class TlsServer(ServerProcess):
    """A real server on HTTPS (``KEYKEEPER_TLS_*``); ``http`` is an httpx client that
    trusts the CA and presents the PKI's client certificate."""

    def __init__(self, *, data_dir: Path, pki: Pki, client_auth: str,
                 env: dict[str, str] | None = None) -> None:
        tls_env = {"KEYKEEPER_TLS_CERT_FILE": str(pki.server),
                   "KEYKEEPER_TLS_KEY_FILE": str(pki.server_key),
                   "KEYKEEPER_TLS_CLIENT_CA_FILE": str(pki.ca),
                   "KEYKEEPER_TLS_CLIENT_AUTH": client_auth}
        super().__init__(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'kk.db'}",
                         env={**tls_env, **(env or {})})
        self.pki = pki
        self.http.close()
        self.addr = f"https://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.addr, timeout=30.0,
                                 verify=pki.client_context())

    def stop(self) -> None:
        self.http.close()  # first: the server's shutdown waits on open TLS connections
        super().stop()

    def cli(self, *args: str, env: dict[str, str] | None = None,
            token: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``keykeeper`` command against this server, with the PKI's CA and
        client certificate given through Vault-style environment variables."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("KEYKEEPER_")}
        base.update({"KEYKEEPER_ADDR": self.addr, "KEYKEEPER_CACERT": str(self.pki.ca),
                     "KEYKEEPER_CLIENT_CERT": str(self.pki.client),
                     "KEYKEEPER_CLIENT_KEY": str(self.pki.client_key)})
        if token:
            base["KEYKEEPER_TOKEN"] = token
        return subprocess.run([*KEYKEEPER, *args], env={**base, **(env or {})},
                              capture_output=True, text=True, timeout=60)


def start(server: TlsServer) -> TlsServer:
    server.start()
    server.init_and_unseal()
    return server


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """Client certificates required; initialised and unsealed."""
    server = TlsServer(data_dir=tmp_path_factory.mktemp("mtls"), pki=pki,
                       client_auth="required")
    try:
        yield start(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rsa_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A dev-certs PKI with RSA-3072 keys (so RSA key exchange could be negotiated at
    all, were the policy to allow it)."""
    return dev_certs(tmp_path_factory.mktemp("rsa-pki"), "--key-type", "rsa",
                     "--client-name", "tls-app")


@pytest.fixture(scope="module")
def optional_server(rsa_pki: Pki,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """RSA certificates, client certificates optional; initialised and unsealed."""
    server = TlsServer(data_dir=tmp_path_factory.mktemp("optional"), pki=rsa_pki,
                       client_auth="optional")
    try:
        yield start(server)
    finally:
        server.stop()
