"""``keykeeper dev-certs``: what it writes, that it never overwrites without --force, and
that its output is usable as is: the printed server command serves TLS, and the printed
environment and principal command let the CLI in by its certificate alone."""

from __future__ import annotations

import json
import os
import shlex
import ssl
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from keykeeper.cli.main import app
from tests.support.server import free_port
from tests.tls.conftest import FILES_MODES, KEYKEEPER, dev_certs


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_files_modes_and_extensions(tmp_path: Path) -> None:
    out = tmp_path / "new" / "certs"
    pki = dev_certs(out, "--client-name", "billing", "--hosts", "kk.example,10.0.0.5,::1")
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name, mode in FILES_MODES.items():
        assert stat.S_IMODE((out / name).stat().st_mode) == mode, name
    ca, server, client = cert(pki.ca), cert(pki.server), cert(pki.client)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["kk.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "::1"]
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "billing"
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
        assert 89 <= (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 90


def test_rsa_and_days(tmp_path: Path) -> None:
    pki = dev_certs(tmp_path, "--key-type", "rsa", "--days", "7")
    key = cert(pki.server).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072
    ku = cert(pki.server).extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment
    days = cert(pki.client).not_valid_after_utc - cert(pki.client).not_valid_before_utc
    assert days.days == 7


def test_never_overwrites_without_force(tmp_path: Path) -> None:
    pki = dev_certs(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    code, _, err = run("dev-certs", "--out", str(tmp_path))
    assert code == 1
    assert err.startswith("error: already_exists: ") and "add --force" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # One file alone is enough to refuse; --force replaces all (and keys stay 0600).
    for p in tmp_path.iterdir():
        if p.name != "client-key.pem":
            p.unlink()
    assert run("dev-certs", "--out", str(tmp_path))[0] == 1
    pki.client_key.chmod(0o644)
    code, _, _ = run("dev-certs", "--out", str(tmp_path), "--force")
    assert code == 0
    assert pki.client_key.read_bytes() != before["client-key.pem"]
    for name, mode in FILES_MODES.items():
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


@pytest.mark.parametrize(("args", "message"), [
    (["--hosts", "bad host!"], "not a DNS name or IP address"),
    (["--hosts", ","], "no host given"),
    (["--key-type", "dsa"], "expected ec or rsa"),
    (["--client-name", ""], "1 to 64 printable characters"),
    (["--days", "0"], "--days"),
])
def test_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = run("dev-certs", "--out", str(tmp_path / "x"), *args)
    assert code == 2 and message in err
    assert not (tmp_path / "x").exists()


def test_json_output(tmp_path: Path) -> None:
    code, out, _ = run("--format", "json", "dev-certs", "--out", str(tmp_path))
    assert code == 0
    doc = json.loads(out)
    assert doc["client_subject"] == "CN=keykeeper-client"
    assert doc["hosts"] == ["localhost", "127.0.0.1"]
    assert Path(doc["server_key"]) == (tmp_path / "server-key.pem").absolute()
    assert doc["environment"]["KEYKEEPER_CACERT"] == str((tmp_path / "ca.pem").absolute())


def test_output_usable_as_is(tmp_path: Path) -> None:
    """Paste what dev-certs prints: the server line (plus --dev and a free port), the
    exports, the principal command; then the CLI gets in by its certificate alone."""
    code, out, _ = run("dev-certs", "--out", str(tmp_path / "pki"), "--client-name", "demo")
    assert code == 0
    lines = [line.strip() for line in out.splitlines()]
    server_line = next(line for line in lines if line.startswith("keykeeper server "))
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines
                   if line.startswith("export "))
    principal_line = next(line for line in lines if line.startswith("keykeeper principal "))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYKEEPER_")}
    cli_env = {**env, **{k: shlex.split(v)[0] for k, v in exports.items()}}
    assert cli_env["KEYKEEPER_ADDR"] == "https://localhost:8200"
    cli_env["KEYKEEPER_ADDR"] = f"https://localhost:{port}"
    server = subprocess.Popen(
        [*KEYKEEPER, *shlex.split(server_line)[1:], "--dev", "--dev-root-token", "kk.demo-root",
         "--listen", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def cli(line: str, **extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*KEYKEEPER, *shlex.split(line)[1:]], env={**cli_env, **extra},
                                  capture_output=True, text=True, timeout=60)

        ctx = ssl.create_default_context(cafile=cli_env["KEYKEEPER_CACERT"])
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            try:
                httpx.get(cli_env["KEYKEEPER_ADDR"] + "/v1/sys/health", verify=ctx)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        status = cli("keykeeper status --format json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["sealed"] is False
        made = cli(principal_line, KEYKEEPER_TOKEN="kk.demo-root")
        assert made.returncode == 0, made.stderr
        whoami = cli("keykeeper token whoami --format json")
        assert whoami.returncode == 0, whoami.stderr
        assert json.loads(whoami.stdout)["principal"] == "demo"
    finally:
        server.terminate()
        server.wait(20)
