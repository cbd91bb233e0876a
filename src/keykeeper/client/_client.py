"""The synchronous SDK client."""

from __future__ import annotations

from types import TracebackType

import httpx

from keykeeper.client._alerts import AlertsMixin
from keykeeper.client._approvals import ApprovalsMixin
from keykeeper.client._audit import AuditMixin
from keykeeper.client._backup import BackupMixin
from keykeeper.client._http import Http
from keykeeper.client._identity import IdentityMixin
from keykeeper.client._keys import KeysMixin
from keykeeper.client._lifecycle import LifecycleMixin
from keykeeper.client._ops import OpsMixin
from keykeeper.client._scheduler import SchedulerMixin
from keykeeper.client._tls import CertArg, VerifyArg
from keykeeper.client._transfer import TransferMixin

__all__ = ["Client"]


class Client(KeysMixin, OpsMixin, IdentityMixin, ApprovalsMixin, AuditMixin, LifecycleMixin,
             AlertsMixin, SchedulerMixin, TransferMixin, BackupMixin):
    """A keykeeper REST API client: one method per route.

    ``addr`` defaults to ``$KEYKEEPER_ADDR``, then ``http://127.0.0.1:8200``;
    ``token`` defaults to ``$KEYKEEPER_TOKEN``. ``timeout`` is in seconds.
    ``transport`` replaces httpx's network transport (tests, custom TLS, proxies).
    ``verify``: True (the system's trust store), a CA file or directory, an
    :class:`ssl.SSLContext`, or False (no verification); default ``$KEYKEEPER_CACERT``,
    else True. ``cert``: the client certificate for mTLS, a PEM file holding the
    certificate and key or a ``(certificate, key)`` pair of files; default
    ``$KEYKEEPER_CLIENT_CERT`` and ``$KEYKEEPER_CLIENT_KEY``. With a client certificate
    mapped to a principal, no token is needed (docs/tls.md).

    Every method raises a :mod:`keykeeper.errors` exception on failure: the class
    named by the server's ``code``, or :class:`ConnectionFailed` (an
    :class:`~keykeeper.errors.Unavailable`) when the server cannot be reached.

    Use it as a context manager, or call :meth:`close`::

        with Client() as kk:
            ct = kk.encrypt("orders", b"secret", context={"order": "42"}).ciphertext
    """

    def __init__(
        self,
        addr: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        verify: VerifyArg = None,
        cert: CertArg = None,
    ) -> None:
        self._http = Http(addr, token, timeout=timeout, transport=transport, verify=verify,
                          cert=cert)

    @property
    def addr(self) -> str:
        """The server's base URL, without a trailing slash."""
        return self._http.addr

    @property
    def last_request_id(self) -> str | None:
        """The ``x-request-id`` of the last answer this client received (its request's id
        in the audit trail); None before the first. Not meaningful for a client shared
        between threads."""
        return self._http.last_request_id

    def __repr__(self) -> str:
        return f"Client(addr={self.addr!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
