"""A verified client certificate authenticates a request without a bearer token: the
certificate's subject maps to a principal (service/cert_auth.py), through the SDK, the CLI
and plain HTTPS, on a server that requires certificates and on one where they are
optional."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from keykeeper.cli._x509 import issue_client
from keykeeper.client import Client
from keykeeper.errors import Unauthenticated
from tests.tls.conftest import Pki, TlsServer, load_ca, write_issued


def map_principal(server: TlsServer, name: str, subject: str, role: str) -> None:
    r = server.post("/v1/principals", {"name": name, "kind": "service", "roles": [role],
                                       "certificate_subjects": [subject]})
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def mapped(mtls_server: TlsServer) -> str:
    map_principal(mtls_server, "tls-app", "CN=tls-app", "crypto-officer")
    return "tls-app"


@pytest.fixture(scope="module")
def mapped_optional(optional_server: TlsServer) -> str:
    map_principal(optional_server, "tls-app", "CN=tls-app", "crypto-officer")
    return "tls-app"


def sdk(server: TlsServer, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.delenv("KEYKEEPER_TOKEN", raising=False)
    return Client(server.addr, verify=str(server.pki.ca),
                  cert=(str(server.pki.client), str(server.pki.client_key)))


def test_sdk_with_certificate_only(mtls_server: TlsServer, mapped: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    name = "cert-key-" + secrets.token_hex(3)
    with sdk(mtls_server, monkeypatch) as kk:
        me = kk.whoami()
        assert (me.principal, me.roles, me.accessor) == (mapped, ["crypto-officer"], None)
        key = kk.create_key(name, purpose="encrypt")
        assert name in [k.name for k in kk.list_keys().keys]
    # Audited as the certificate's principal (the database sink writes in the background).
    created: list[dict[str, str]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = mtls_server.get(f"/v1/audit?key={key.id}&operation=key.create")
        assert r.status_code == 200, r.text
        created = r.json()["records"]
        if created:
            break
        time.sleep(0.2)
    assert created and {rec["principal"] for rec in created} == {mapped}
    assert all("token_hmac" not in rec for rec in created)


def test_token_wins_over_certificate(mtls_server: TlsServer, mapped: str) -> None:
    with Client(mtls_server.addr, mtls_server.root_token, verify=str(mtls_server.pki.ca),
                cert=(str(mtls_server.pki.client), str(mtls_server.pki.client_key))) as kk:
        assert kk.whoami().principal == "root"


def test_cli_with_certificate_from_environment(mtls_server: TlsServer, mapped: str) -> None:
    done = mtls_server.cli("token", "whoami", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["principal"] == mapped
    done = mtls_server.cli("key", "list", "--format", "json")
    assert done.returncode == 0, done.stderr


def test_cli_with_certificate_options(mtls_server: TlsServer, mapped: str) -> None:
    pki = mtls_server.pki
    done = mtls_server.cli("token", "whoami", "--format", "json", "--ca-cert", str(pki.ca),
                           "--client-cert", str(pki.client), "--client-key",
                           str(pki.client_key),
                           env={"KEYKEEPER_CACERT": "", "KEYKEEPER_CLIENT_CERT": "",
                                "KEYKEEPER_CLIENT_KEY": ""})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["principal"] == mapped


def test_cli_without_certificate_is_refused(mtls_server: TlsServer) -> None:
    done = mtls_server.cli("status", env={"KEYKEEPER_CLIENT_CERT": "",
                                          "KEYKEEPER_CLIENT_KEY": ""})
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unavailable: cannot reach keykeeper")


def test_cli_with_untrusted_server_is_refused(mtls_server: TlsServer, other_pki: Pki) -> None:
    done = mtls_server.cli("status", env={"KEYKEEPER_CACERT": str(other_pki.ca)})
    assert done.returncode == 3
    assert "TLS: certificate verify failed" in done.stderr


# -- client certificates optional ----------------------------------------------------------
def test_optional_token_without_certificate(optional_server: TlsServer) -> None:
    with httpx.Client(base_url=optional_server.addr, timeout=30,
                      verify=optional_server.pki.client_context(with_cert=False)) as http:
        r = http.get("/v1/keys", headers={"authorization": f"Bearer {optional_server.root_token}"})
        assert r.status_code == 200, r.text
        r = http.get("/v1/keys")
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


def test_optional_certificate_without_token(optional_server: TlsServer, mapped_optional: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with sdk(optional_server, monkeypatch) as kk:
        assert kk.whoami().principal == mapped_optional
    # /metrics takes the certificate too (crypto-officer may metrics.read).
    r = optional_server.http.get("/metrics")
    assert r.status_code == 200 and "keykeeper" in r.text


def test_unmapped_certificate_is_unauthenticated(optional_server: TlsServer, rsa_pki: Pki,
                                                 tmp_path: Path) -> None:
    stranger = write_issued(issue_client(load_ca(rsa_pki), "stranger", days=1, kind="rsa"),
                            tmp_path, "stranger")
    with Client(optional_server.addr, "", verify=str(rsa_pki.ca),
                cert=(str(stranger[0]), str(stranger[1]))) as kk, \
            pytest.raises(Unauthenticated, match="certificate does not map"):
        kk.list_keys()
