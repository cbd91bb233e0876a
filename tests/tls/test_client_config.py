"""The SDK's TLS settings (client/_tls.py): arguments, Vault-style environment variables,
and one clear error for each bad file. No server: these fail before any connection."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from keykeeper.cli.main import app
from keykeeper.client import Client
from keykeeper.client._tls import ssl_config
from keykeeper.errors import InvalidArgument
from tests.tls.conftest import Pki


@pytest.fixture(autouse=True)
def no_tls_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEYKEEPER_CACERT", "KEYKEEPER_CLIENT_CERT", "KEYKEEPER_CLIENT_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_leave_httpx_alone() -> None:
    assert ssl_config(None, None) is True
    assert ssl_config(False, None) is False


def test_ca_and_client_certificate(pki: Pki) -> None:
    ctx = ssl_config(str(pki.ca), (str(pki.client), str(pki.client_key)))
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    loaded = ctx.get_ca_certs()
    assert len(loaded) == 1
    assert str(ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) in str(loaded)
    mine = ssl.create_default_context()
    assert ssl_config(mine, None) is mine


def test_environment(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYKEEPER_CACERT", str(pki.ca))
    assert len(ssl_config(None, None).get_ca_certs()) == 1  # type: ignore[union-attr]
    monkeypatch.setenv("KEYKEEPER_CLIENT_KEY", str(pki.client_key))
    with pytest.raises(InvalidArgument, match="KEYKEEPER_CLIENT_KEY is set without"):
        ssl_config(None, None)
    monkeypatch.setenv("KEYKEEPER_CLIENT_CERT", str(pki.client))
    assert isinstance(ssl_config(None, None), ssl.SSLContext)


def test_bad_files(pki: Pki, other_pki: Pki, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("junk\n")
    cases = [
        ((str(tmp_path / "none.pem"), None), "cannot load the CA certificates .*none.pem: "
                                             "no such file"),
        ((str(junk), None), "cannot load the CA certificates .*junk.pem"),
        ((True, (str(pki.client), str(other_pki.client_key))), "does not match the certificate"),
        ((True, (str(pki.client), str(tmp_path / "k.pem"))),
         "cannot load the client key .*k.pem: no such file"),
        ((True, str(junk)), "cannot load the client certificate .*junk.pem"),
        ((False, str(pki.client)), "needs server verification on"),
        ((ssl.create_default_context(), str(pki.client)), "inside your SSLContext"),
    ]
    for (verify, cert), message in cases:
        with pytest.raises(InvalidArgument, match=message):
            ssl_config(verify, cert)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="does not match"):
        Client("https://127.0.0.1:1", cert=(str(pki.client), str(other_pki.client_key)))


def test_cli_client_key_needs_certificate(pki: Pki) -> None:
    result = CliRunner().invoke(app, ["--client-key", str(pki.client_key), "status"])
    assert result.exit_code == 2 and "--client-key needs --client-cert" in result.output
