"""TLS for the REST listener on uvicorn: the context installed through uvicorn's
``ssl_context_factory`` and an HTTP protocol that hands the client certificate to the app.

uvicorn builds its own :class:`ssl.SSLContext` from a few options and does not put the
peer certificate in the ASGI scope. :func:`uvicorn_options` gives ``uvicorn.Config`` the
keywords that replace both: the factory returns :func:`keykeeper.tls.server_context`
(so the policy lives in one place, shared with the KMIP listener), and
:class:`TlsHttpProtocol` adds the ASGI TLS extension to every request of a TLS
connection::

    scope["extensions"]["tls"] = {"client_cert_chain": [PEM, ...], "client_cert_name": DN,
                                  "tls_version": 0x0304, ...}

Both are picklable module-level objects, so they reach every worker of a multi-process
server (uvicorn spawns workers and pickles the config). Without TLS none of this is
installed and the request path is uvicorn's own.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from typing import Any

from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from keykeeper.tls import TlsSettings, server_context

__all__ = ["TlsHttpProtocol", "tls_extension", "uvicorn_options"]

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def uvicorn_options(settings: TlsSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` that serve TLS with ``settings``."""
    return {"ssl_context_factory": functools.partial(_context_factory, settings),
            "http": TlsHttpProtocol}


def _context_factory(settings: TlsSettings, config: Any,
                     default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    return server_context(settings)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension (ASGI spec, "TLS") of one established connection: the
    verified client certificate as PEM (leaf only: Python exposes no verified chain
    before 3.13), its subject DN (RFC 4514), and the TLS version."""
    der = ssl_object.getpeercert(binary_form=True)
    name: str | None = None
    if der:
        try:
            name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
        except ValueError:
            name = None
    return {"server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": name, "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
            "cipher_suite": None}


class _WithTls:
    """Adds one connection's TLS extension to the scope of each of its requests."""

    __slots__ = ("app", "tls")

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app, self.tls = app, tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions")
        if extensions is None:
            scope["extensions"] = {"tls": self.tls}
        else:
            extensions["tls"] = self.tls
        await self.app(scope, receive, send)


class TlsHttpProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus the ASGI TLS extension on each request's scope. The
    handshake has finished when ``connection_made`` runs, so the peer certificate is
    read once per connection, not per request."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithTls(self.app, tls_extension(ssl_object))
