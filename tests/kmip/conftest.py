"""The shared KMIP fixture: one real keykeeper server (subprocess) serving REST over HTTPS
and the KMIP listener over mutual TLS, initialised and unsealed.

API (session-scoped, so one server per pytest(-xdist) worker):

``kmip_server`` -> :class:`KmipServer` with
    host, port                 the KMIP listener (TLS 1.2+, client certificate required)
    ca, client_cert, client_key  PEM paths: the dev-certs CA, and a client certificate
                               ("CN=kmip-client") mapped to principal ``kmip-admin``
                               (role ``kmip-admin``: every operation, granted on every
                               namespace)
    unmapped_cert, unmapped_key  a certificate of the same CA that maps to no principal
    token                      the REST root token; ``rest_url`` the REST base URL
                               ("https://127.0.0.1:PORT"); ``rest`` an httpx.Client on it
                               (trusts the CA, sends the root token)
    namespace                  "kmip" (KEYKEEPER_KMIP_NAMESPACE; allow_legacy_rsa_2048 on);
                               KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT=true; the approval
                               policy has no key.* operations (no dual control on keys:
                               KMIP Get/Destroy/Revoke cannot wait for approvals)
    call(request: Item) -> Item  one Request Message over one persistent TLS connection
                               (binary TTLV; thread-safe; reconnects after a close)
    connect(cert=None) -> ssl.SSLSocket  a new TLS connection (``cert``: (cert, key) paths
                               or None for the mapped client certificate)
    exchange(sock, data: bytes) -> bytes  send raw bytes, read one TTLV message back
    data_dir                   the server's data directory (server.log there)

``kmip_call`` -> ``kmip_server.call``.

``live`` (module-scoped) -> ``kmip_server`` with no approval rules while the module runs
(the policy is restored after it).

``launch(kmip_pki, tmp_path_factory, env)`` (a context manager) starts another such server
when a test must change server state (seal it, stop it, other settings); it yields
``(TlsServer, KmipServer)``.

Build requests with ``keykeeper.kmip.messages.request_message(...)`` /
``batch_item(...)``, and read answers with ``keykeeper.kmip.messages.parse_response``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from keykeeper.cli._x509 import issue_client
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.codec import decode, encode, message_length
from tests.support.server import free_port
from tests.tls.conftest import Pki, TlsServer, dev_certs, load_ca, write_issued

NAMESPACE = "kmip"
CLIENT_CN = "kmip-client"
ADMIN = "kmip-admin"


def _read_exact(sock: ssl.SSLSocket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("the KMIP server closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


@dataclass
class KmipServer:
    host: str
    port: int
    ca: Path
    client_cert: Path
    client_key: Path
    unmapped_cert: Path
    unmapped_key: Path
    token: str
    rest_url: str
    rest: httpx.Client
    data_dir: Path
    namespace: str = NAMESPACE
    _sock: ssl.SSLSocket | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def context(self, cert: tuple[Path, Path] | None = None,
                with_cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if with_cert:
            ctx.load_cert_chain(*(cert or (self.client_cert, self.client_key)))
        return ctx

    def connect(self, cert: tuple[Path, Path] | None = None, *,
                with_cert: bool = True, timeout: float = 30.0) -> ssl.SSLSocket:
        raw = socket.create_connection((self.host, self.port), timeout=timeout)
        return self.context(cert, with_cert).wrap_socket(raw, server_hostname=self.host)

    @staticmethod
    def exchange(sock: ssl.SSLSocket, data: bytes) -> bytes:
        """Send ``data``; return the next whole TTLV message the server writes."""
        sock.sendall(data)
        header = _read_exact(sock, 8)
        return header + _read_exact(sock, message_length(header) - 8)

    def call(self, request: Item) -> Item:
        with self._lock:
            data = encode(request)
            for attempt in (0, 1):
                if self._sock is None:
                    self._sock = self.connect()
                try:
                    return decode(self.exchange(self._sock, data))
                except (ConnectionError, ssl.SSLError, OSError):
                    self.close()
                    if attempt:
                        raise
            raise AssertionError("unreachable")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def _setup_rest(server: TlsServer) -> None:
    for path, body in (
            ("/v1/roles", {"name": ADMIN, "operations": ["*"],
                           "description": "KMIP test client"}),
            ("/v1/grants", {"grantee": f"role:{ADMIN}", "operations": ["*"],
                            "namespace": "*"}),
            ("/v1/principals", {"name": ADMIN, "kind": "service", "roles": [ADMIN],
                                "certificate_subjects": [f"CN={CLIENT_CN}"]}),
            ("/v1/namespaces", {"name": NAMESPACE, "allow_legacy_rsa_2048": True})):
        r = server.post(path, body)
        assert r.status_code in (200, 201), (path, r.text)
    # KMIP Get, Destroy and Revoke cannot wait for approvals: take the key operations out
    # of dual control on this server (the other rules stay).
    r = server.get("/v1/policies/approval")
    assert r.status_code == 200, r.text
    rules = []
    for rule in r.json()["rules"]:
        ops = [op for op in rule["operations"] if not op.startswith("key.")]
        if ops:
            rules.append({**rule, "operations": ops})
    r = server.request("PUT", "/v1/policies/approval", {"rules": rules})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="session")
def kmip_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return dev_certs(tmp_path_factory.mktemp("kmip-pki"), "--client-name", CLIENT_CN)


@contextlib.contextmanager
def launch(pki: Pki, tmp_path_factory: pytest.TempPathFactory,
           env: dict[str, str] | None = None) -> Iterator[tuple[TlsServer, KmipServer]]:
    """Start a server like ``kmip_server``'s (``env`` adds settings, e.g.
    ``KEYKEEPER_KMIP_IDLE_TIMEOUT``), initialised, unsealed and set up; stop it after."""
    unmapped = write_issued(issue_client(load_ca(pki), "kmip-stranger", days=30),
                            tmp_path_factory.mktemp("kmip-unmapped"), "stranger")
    kmip_port = free_port()
    data_dir = tmp_path_factory.mktemp("kmip-server")
    server = TlsServer(data_dir=data_dir, pki=pki, client_auth="optional", env={
        "KEYKEEPER_KMIP_LISTEN": f"127.0.0.1:{kmip_port}",
        "KEYKEEPER_KMIP_NAMESPACE": NAMESPACE,
        "KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT": "true",
        "KEYKEEPER_SCHEDULER": "off", **(env or {})})
    server.start()
    kmip: KmipServer | None = None
    try:
        server.init_and_unseal()
        _setup_rest(server)
        rest = httpx.Client(base_url=server.addr, timeout=30.0,
                            verify=pki.client_context(with_cert=False),
                            headers={"Authorization": f"Bearer {server.root_token}"})
        kmip = KmipServer(host="127.0.0.1", port=kmip_port, ca=pki.ca,
                          client_cert=pki.client, client_key=pki.client_key,
                          unmapped_cert=unmapped[0], unmapped_key=unmapped[1],
                          token=server.root_token, rest_url=server.addr, rest=rest,
                          data_dir=data_dir)
        yield server, kmip
    finally:
        if kmip is not None:
            kmip.close()
            kmip.rest.close()
        server.stop()


@pytest.fixture(scope="session")
def kmip_server(kmip_pki: Pki,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[KmipServer]:
    with launch(kmip_pki, tmp_path_factory) as (_, kmip):
        yield kmip


@pytest.fixture(scope="session")
def kmip_call(kmip_server: KmipServer) -> Callable[[Item], Item]:
    return kmip_server.call


@pytest.fixture(scope="module")
def live(kmip_server: KmipServer) -> Iterator[KmipServer]:
    """The shared KMIP server, with the approval policy's default rules removed for the
    module (the KMIP client principal is not root: Get of material, compromise and destroy
    would wait for approvals otherwise), restored afterwards."""
    before = kmip_server.rest.get("/v1/policies/approval")
    assert before.status_code == 200, before.text
    r = kmip_server.rest.put("/v1/policies/approval", json={"rules": []})
    assert r.status_code in (200, 202), r.text
    yield kmip_server
    kmip_server.rest.put("/v1/policies/approval", json=before.json())
