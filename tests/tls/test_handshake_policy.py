"""What a real keykeeper server refuses at the TLS layer (docs/tls.md): TLS 1.1, TLS 1.2
with only CBC or only non-forward-secret suites, a missing client certificate where one
is required, a certificate from another CA, an expired one, a server certificate offered
as a client certificate, and plain HTTP on the TLS port.

Each refusal has a control: the same client, changed only in the property under test,
gets an answer (from keykeeper, or from a permissive local TLS server when keykeeper is
meant to refuse it), so a refusal cannot come from a broken client or a dead server."""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from keykeeper.client import Client, ConnectionFailed
from tests.tls.conftest import Pki, TlsServer

REQUEST = b"GET /v1/sys/health HTTP/1.1\r\nHost: kk\r\nConnection: close\r\n\r\n"
CBC_ONLY = "ECDHE+AES:!AESGCM:!AESCCM"            # forward secret, but CBC
NO_FORWARD_SECRECY = "kRSA+AESGCM"                # AEAD, but RSA key transport


def fetch(port: int, ctx: ssl.SSLContext) -> bytes:
    """One HTTPS request on a raw socket: the answer's bytes, or b"" when the TLS
    layer refused (handshake failure, reset, or end of stream before any answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(REQUEST)
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
    except (ssl.SSLError, OSError):
        return b""


def client_ctx(ca: Path, setup: Callable[[ssl.SSLContext], None] | None = None,
               cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(*cert)
    if setup is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1
            setup(ctx)
    return ctx


@contextmanager
def permissive_server(pki: Pki, setup: Callable[[ssl.SSLContext], None]) -> Iterator[int]:
    """A local TLS server with ``pki``'s server certificate and the given (weak) settings:
    proof that a client really offers what keykeeper refuses."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server, pki.server_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        setup(ctx)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        thread.join(5)


def tls11(ctx: ssl.SSLContext) -> None:
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1


def tls12_with(ciphers: str) -> Callable[[ssl.SSLContext], None]:
    def setup(ctx: ssl.SSLContext) -> None:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
    return setup


# -- protocol versions and cipher suites ----------------------------------------------------
def test_default_client_gets_tls13(optional_server: TlsServer, rsa_pki: Pki) -> None:
    with socket.create_connection(("127.0.0.1", optional_server.port), timeout=10) as raw, \
            client_ctx(rsa_pki.ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        cipher = tls.cipher()
        assert tls.version() == "TLSv1.3" and cipher is not None
        assert cipher[0] in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                                   "TLS_AES_128_GCM_SHA256")


def test_tls11_refused(optional_server: TlsServer, rsa_pki: Pki) -> None:
    with permissive_server(rsa_pki, tls11) as control:
        if not fetch(control, client_ctx(rsa_pki.ca, tls11)).startswith(b"HTTP/1.1 200"):
            pytest.skip("this OpenSSL cannot offer TLS 1.1 even at @SECLEVEL=0")
    assert fetch(optional_server.port, client_ctx(rsa_pki.ca, tls11)) == b""
    assert fetch(optional_server.port, client_ctx(rsa_pki.ca)).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("ciphers", [CBC_ONLY, NO_FORWARD_SECRECY])
def test_tls12_weak_suites_refused(optional_server: TlsServer, rsa_pki: Pki,
                                   ciphers: str) -> None:
    setup = tls12_with(ciphers)
    with permissive_server(rsa_pki, setup) as control:  # the client does offer them
        assert fetch(control, client_ctx(rsa_pki.ca, setup)).startswith(b"HTTP/1.1 200")
    assert fetch(optional_server.port, client_ctx(rsa_pki.ca, setup)) == b""


@pytest.mark.parametrize("cipher", ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                                    "ECDHE-RSA-CHACHA20-POLY1305"])
def test_tls12_aead_with_forward_secrecy_accepted(optional_server: TlsServer, rsa_pki: Pki,
                                                  cipher: str) -> None:
    answer = fetch(optional_server.port, client_ctx(rsa_pki.ca, tls12_with(cipher)))
    assert answer.startswith(b"HTTP/1.1 200")


def test_ecdsa_server_tls12_suites(mtls_server: TlsServer, pki: Pki) -> None:
    cert = (pki.client, pki.client_key)
    ok = client_ctx(pki.ca, tls12_with("ECDHE-ECDSA-AES128-GCM-SHA256"), cert)
    assert fetch(mtls_server.port, ok).startswith(b"HTTP/1.1 200")
    cbc = client_ctx(pki.ca, tls12_with("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA"), cert)
    assert fetch(mtls_server.port, cbc) == b""


def test_plain_http_to_tls_port_fails(mtls_server: TlsServer) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{mtls_server.port}/v1/sys/health", timeout=10)


# -- client certificates --------------------------------------------------------------------
def test_required_client_certificate(mtls_server: TlsServer, pki: Pki, other_pki: Pki,
                                     expired_client: tuple[Path, Path]) -> None:
    port = mtls_server.port
    good = client_ctx(pki.ca, cert=(pki.client, pki.client_key))
    assert fetch(port, good).startswith(b"HTTP/1.1 200")  # the control
    assert fetch(port, client_ctx(pki.ca)) == b""  # no certificate
    assert fetch(port, client_ctx(pki.ca, cert=(other_pki.client, other_pki.client_key))) == b""
    assert fetch(port, client_ctx(pki.ca, cert=expired_client)) == b""
    # A certificate of the right CA, but for servers only (extended key usage serverAuth).
    assert fetch(port, client_ctx(pki.ca, cert=(pki.server, pki.server_key))) == b""
    assert fetch(port, good).startswith(b"HTTP/1.1 200")  # the server is still fine


def test_sdk_reports_tls_refusals(mtls_server: TlsServer, pki: Pki, other_pki: Pki) -> None:
    with Client(mtls_server.addr, verify=str(pki.ca)) as kk, \
            pytest.raises(ConnectionFailed, match="requires a client certificate"):
        kk.health()  # no client certificate: the server closes the connection
    with Client(mtls_server.addr, verify=str(other_pki.ca),
                cert=(str(pki.client), str(pki.client_key))) as kk, \
            pytest.raises(ConnectionFailed, match="TLS: certificate verify failed"):
        kk.health()  # the server's certificate is not from the CA this client trusts
    with Client(mtls_server.addr, verify=str(pki.ca),
                cert=(str(pki.client), str(pki.client_key))) as kk:
        assert kk.health().initialized is True
