"""Starting a server: bad TLS files and settings are one clear line and a non-zero exit;
plain HTTP on a non-loopback address is refused without --insecure-no-tls; TLS works with
several workers (each builds its context from the pickled settings)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from keykeeper.cli._x509 import issue_server, parse_hosts
from keykeeper.errors import InvalidArgument
from keykeeper.tls import TLS12_CIPHERS, TlsSettings, server_context
from tests.support.server import free_port
from tests.tls.conftest import KEYKEEPER, Pki, load_ca, write_issued


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYKEEPER_")}
    return {**env, **extra}


@contextmanager
def running(args: list[str], env: dict[str, str], url: str,
            verify: object = True) -> Iterator[subprocess.Popen[str]]:
    """``keykeeper server ARGS`` until ``url`` answers 200; stopped afterwards."""
    proc = subprocess.Popen([*KEYKEEPER, "server", *args], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(url, verify=verify, timeout=5).status_code == 200:  # type: ignore[arg-type]
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def refused(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run ``keykeeper server ARGS`` expecting a refusal; its one stderr line."""
    done = subprocess.run([*KEYKEEPER, "server", *args], env=env or clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


# -- listening without TLS -----------------------------------------------------------------
def test_non_loopback_without_tls_refused(tmp_path: Path) -> None:
    line = refused(["--listen", f"0.0.0.0:{free_port()}", "--data-dir", str(tmp_path)])
    assert line.startswith("error: invalid_argument: refusing plain HTTP on 0.0.0.0:")
    assert "--insecure-no-tls" in line and "--tls-cert" in line
    line = refused(["--dev", "--listen", f"0.0.0.0:{free_port()}"])  # dev mode too
    assert "refusing plain HTTP" in line


def test_non_loopback_with_insecure_flag(tmp_path: Path) -> None:
    port = free_port()
    with running(["--listen", f"0.0.0.0:{port}", "--data-dir", str(tmp_path),
                  "--insecure-no-tls"], clean_env(), f"http://127.0.0.1:{port}/v1/sys/health"):
        pass
    port = free_port()
    with running(["--listen", f"0.0.0.0:{port}", "--data-dir", str(tmp_path / "b")],
                 clean_env(KEYKEEPER_INSECURE_NO_TLS="on"),
                 f"http://127.0.0.1:{port}/v1/sys/health"):
        pass


def test_tls_on_non_loopback_with_two_workers(pki: Pki) -> None:
    """TLS, all interfaces, two worker processes (spawned: the context factory and the
    protocol class are pickled), client certificates required; each request is served."""
    port = free_port()
    args = ["--dev", "--dev-root-token", "kk.tls-workers", "--workers", "2",
            "--listen", f"0.0.0.0:{port}", "--tls-cert", str(pki.server),
            "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca),
            "--tls-client-auth", "required"]
    ctx = pki.client_context()
    url = f"https://127.0.0.1:{port}"
    with running(args, clean_env(), url + "/v1/sys/health", verify=ctx) as proc, \
            httpx.Client(base_url=url, verify=ctx, timeout=30) as http:
        auth = {"authorization": "Bearer kk.tls-workers"}
        r = http.post("/v1/principals", headers=auth, json={
            "name": "tls-worker-app", "roles": ["crypto-officer"],
            "certificate_subjects": ["CN=tls-app"]})
        assert r.status_code == 201, r.text
        for _ in range(20):  # new connections: both workers answer
            with httpx.Client(base_url=url, verify=ctx, timeout=30) as one:
                r = one.get("/v1/tokens/self")
                if r.status_code == 401:  # the other worker's 1 s principal cache
                    time.sleep(1.1)
                    r = one.get("/v1/tokens/self")
                assert r.status_code == 200 and r.json()["principal"] == "tls-worker-app"
        with httpx.Client(base_url=url, verify=pki.client_context(with_cert=False)) as bare, \
                pytest.raises(httpx.TransportError):
            bare.get("/v1/sys/health")
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert "Traceback" not in log and f"export KEYKEEPER_ADDR=https://0.0.0.0:{port}" in log, log


# -- bad files and settings ----------------------------------------------------------------
def test_mismatched_key_is_one_line_at_start(pki: Pki, other_pki: Pki, tmp_path: Path) -> None:
    line = refused(["--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path),
                    "--tls-cert", str(pki.server), "--tls-key", str(other_pki.server_key)])
    assert line == (f"error: invalid_argument: --tls-key {other_pki.server_key} does not match "
                    f"the certificate in --tls-cert {pki.server}")
    line = refused(["--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path)],
                   clean_env(KEYKEEPER_TLS_CERT_FILE=str(pki.server),
                             KEYKEEPER_TLS_KEY_FILE=str(tmp_path / "missing.pem")))
    assert line.startswith("error: invalid_argument: --tls-key ") and "cannot read" in line


def settings(pki: Pki, **kw: object) -> TlsSettings:
    values: dict[str, object] = {"cert_file": pki.server, "key_file": pki.server_key,
                                 "client_ca_file": None, "client_auth": None, **kw}
    made = TlsSettings.from_values(**values)  # type: ignore[arg-type]
    assert made is not None
    return made


def test_bad_files(pki: Pki, tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    encrypted = tmp_path / "encrypted-key.pem"
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    cases: list[tuple[dict[str, object], str]] = [
        ({"cert_file": tmp_path / "nope.pem"}, "--tls-cert .*nope.pem: cannot read it"),
        ({"cert_file": not_pem}, "--tls-cert .*not.pem: not a PEM certificate file"),
        ({"cert_file": pki.server_key}, "not a PEM certificate file"),
        ({"key_file": not_pem}, "--tls-key .*not.pem: not a PEM private key"),
        ({"key_file": pki.server}, "not a PEM private key"),
        ({"key_file": encrypted}, "the key is encrypted"),
        ({"key_file": pki.client_key}, "does not match the certificate"),
        ({"client_ca_file": not_pem, "client_auth": "required"},
         "--tls-client-ca .*not.pem: not a PEM certificate file"),
    ]
    for change, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            server_context(settings(pki, **change))


def test_expired_server_certificate(pki: Pki, tmp_path: Path) -> None:
    old = issue_server(load_ca(pki), parse_hosts("localhost"), days=1,
                       now=datetime.now(UTC) - timedelta(days=10))
    cert, key = write_issued(old, tmp_path, "old")
    with pytest.raises(InvalidArgument, match="the certificate expired on"):
        server_context(settings(pki, cert_file=cert, key_file=key))


def test_settings_combinations(pki: Pki) -> None:
    assert TlsSettings.from_values(None, None, None, None) is None
    assert TlsSettings.from_values("", "", "", "") is None
    assert settings(pki).client_auth == "none"
    assert settings(pki, client_ca_file=pki.ca).client_auth == "optional"
    assert settings(pki, client_ca_file=pki.ca, client_auth="Required").client_auth == "required"
    bad: list[tuple[dict[str, object], str]] = [
           ({"key_file": None}, "TLS needs both --tls-cert and --tls-key"),
           ({"cert_file": None}, "TLS needs both"),
           ({"client_auth": "sometimes"}, "--tls-client-auth must be none, optional or required"),
           ({"client_auth": "required"}, "--tls-client-auth required needs --tls-client-ca"),
           ({"client_auth": "none", "client_ca_file": pki.ca}, "is given but --tls-client-auth"),
           ]
    for change, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            settings(pki, **change)


def test_context_policy(pki: Pki) -> None:
    import ssl
    ctx = server_context(settings(pki, client_ca_file=pki.ca, client_auth="required"))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
    for option in (ssl.OP_NO_COMPRESSION, ssl.OP_NO_RENEGOTIATION, ssl.OP_NO_TICKET):
        assert ctx.options & option
    suites = {c["name"]: c for c in ctx.get_ciphers()}
    tls12 = {n for n, c in suites.items() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                     "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                     "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}
    assert all(c["aead"] for c in suites.values())
    assert "@SECLEVEL=2" in TLS12_CIPHERS
    optional = server_context(settings(pki, client_ca_file=pki.ca))
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    assert server_context(settings(pki)).verify_mode == ssl.CERT_NONE
