"""HTTP plumbing of the SDK: one place that sends a request and maps failures.

Every failure leaves here as a :mod:`keykeeper.errors` exception:

- a problem+json answer raises ``error_for_code(code)(detail)``;
- an error answer without problem+json (a proxy's 502 page, say) raises the
  class matching its HTTP status;
- a connection failure or timeout raises :class:`ConnectionFailed`, a subclass of
  :class:`keykeeper.errors.Unavailable`;
- an answer that does not have the documented shape raises
  :class:`keykeeper.errors.Internal`.

Errors made from a server answer carry ``status`` (the HTTP status, int) and
``request_id`` (str or None) attributes, and a ``request_id: ...`` note.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from keykeeper.client._tls import CertArg, VerifyArg, has_client_cert, ssl_config
from keykeeper.errors import (
    ApprovalRequired,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    KeykeeperError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    error_for_code,
)

__all__ = ["DEFAULT_ADDR", "KEEP", "NULL", "ConnectionFailed", "b64", "key_path", "segment",
           "unb64"]

NULL = msgspec.Raw(b"null")  # sent as JSON null (requests drop None values)
KEEP: Any = object()          # "leave unchanged" in a PATCH


def segment(value: str, what: str) -> str:
    """``value`` quoted as one URL path segment; InvalidArgument if empty."""
    if not value:
        raise InvalidArgument(f"{what} must not be empty")
    return quote(value, safe="")

DEFAULT_ADDR = "http://127.0.0.1:8200"
USER_AGENT = "keykeeper-python-sdk/0.1"

T = TypeVar("T")

_BY_STATUS: dict[int, type[KeykeeperError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: FailedPrecondition,
    413: PayloadTooLarge,
    429: ResourceExhausted,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


class ConnectionFailed(Unavailable):
    """The server could not be reached (refused, DNS, TLS, timeout): nothing was answered."""


class _Problem(msgspec.Struct):
    code: str = "internal"
    detail: str | None = None
    title: str | None = None
    status: int | None = None
    request_id: str | None = None
    approval_id: str | None = None  # approval_required: the pending request


def _require_finite(value: Any, where: str) -> None:
    """InvalidArgument naming ``where`` (``usage_rotate_fraction``, ``items[2].x``) for a
    NaN or infinite float anywhere in ``value``: msgspec would send NaN and Infinity as
    JSON null (RFC 8259 has no such numbers), and null in a PATCH means "reset to the
    default", so a typo could silently clear a setting."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where} must be a finite number, not {value!r}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _require_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _require_finite(v, f"{where}[{i}]")
    elif isinstance(value, msgspec.Struct):
        _require_finite(msgspec.structs.asdict(value), where)


def b64(data: bytes) -> str:
    """Standard base64 with padding, as the REST API expects; InvalidArgument for non-bytes
    (a ``str`` must be encoded by the caller: the SDK never guesses an encoding)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidArgument(f"expected bytes, got {type(data).__name__}")
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Decode standard base64; raise :class:`InvalidArgument` if it is not."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument("not valid base64") from None


def key_path(key: str, *rest: str) -> str:
    """``/v1/keys/{key}/...`` with ``key`` (id, ``namespace:name`` or name) URL-encoded.
    InvalidArgument for an empty key, or a KMIP Unique Identifier (``k-.../N`` names a key
    *version*, not a key: the message says which key id to give)."""
    if not key:
        raise InvalidArgument("key must not be empty")
    head, slash, tail = key.partition("/")
    if slash and head.startswith("k-") and tail.isdigit():
        raise InvalidArgument(f"'{key[:80]}' is a KMIP Unique Identifier (key id/version):"
                              f" give the key id '{head[:40]}', and the version {tail}"
                              " where the command takes one")
    parts = [quote(key, safe=""), *(quote(p, safe="") for p in rest)]
    return "/v1/keys/" + "/".join(parts)


def _attach(err: KeykeeperError, status: int, request_id: str | None) -> KeykeeperError:
    # Plain attributes on the instance: errors.py stays untouched.
    err.__dict__["status"] = status
    err.__dict__["request_id"] = request_id
    if request_id:
        err.add_note(f"request_id: {request_id}")
    return err


def _error_from(response: httpx.Response) -> KeykeeperError:
    ctype = response.headers.get("content-type", "")
    header_rid = response.headers.get("x-request-id")
    if "json" in ctype:
        try:
            problem = msgspec.json.decode(response.content, type=_Problem)
        except msgspec.DecodeError:
            problem = None
        if problem is not None:
            cls = error_for_code(problem.code)
            detail = problem.detail or problem.title
            err = cls(detail)
            if isinstance(err, ApprovalRequired):
                err.approval_id = problem.approval_id
            return _attach(err, response.status_code, problem.request_id or header_rid)
    cls = _BY_STATUS.get(response.status_code, Internal)
    err = cls(f"HTTP {response.status_code} from server")
    return _attach(err, response.status_code, header_rid)


_NO_CERT_HINT = ("; a server that requires a client certificate closes the connection "
                 "this way: see KEYKEEPER_CLIENT_CERT")
_CERT_REFUSED_HINT = ("; the server may have refused the client certificate (it must "
                      "chain to the server's client CA and allow client authentication: "
                      "a server certificate does not)")


def _tls_reason(exc: BaseException) -> str | None:
    """``TLS: <OpenSSL's reason>`` when a TLS error lies under an httpx error (an
    untrusted server certificate, a client certificate the server refused)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: certificate verify failed: {seen.verify_message or seen.reason}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS: {(seen.reason or str(seen)).lower().replace('_', ' ')}"
        seen = seen.__cause__ or seen.__context__
    return None


class Http:
    """A thin wrapper over :class:`httpx.Client` that speaks the keykeeper conventions."""

    def __init__(
        self,
        addr: str | None,
        token: str | None,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None,
        verify: VerifyArg = None,
        cert: CertArg = None,
    ) -> None:
        self.addr = (addr or os.environ.get("KEYKEEPER_ADDR") or DEFAULT_ADDR).rstrip("/")
        # The x-request-id of the last answer (the request's id in the audit trail).
        self.last_request_id: str | None = None
        self.token = token if token is not None else os.environ.get("KEYKEEPER_TOKEN")
        self._hint = _CERT_REFUSED_HINT if has_client_cert(cert) else _NO_CERT_HINT
        try:
            self._client = httpx.Client(
                base_url=self.addr,
                timeout=timeout,
                transport=transport,
                headers={"user-agent": USER_AGENT, "accept": "application/json"},
                verify=ssl_config(verify, cert),  # client/_tls.py: KEYKEEPER_CACERT, ...
            )

        except (httpx.InvalidURL, ValueError, TypeError):
            raise InvalidArgument(f"not a valid keykeeper address: {self.addr!r}") from None

    def close(self) -> None:
        self._client.close()

    def _auth_headers(self) -> dict[str, str]:
        if not self.token:
            return {}
        if not self.token.isprintable() or not self.token.isascii():
            raise InvalidArgument("the token holds a non-printable or non-ASCII character "
                                  "(a stray newline?)")
        return {"authorization": f"Bearer {self.token}"}

    @contextmanager
    def stream(self, method: str, path: str, *, content: Any,
               content_type: str) -> Iterator[httpx.Response]:
        """Send one request whose body (``content``: bytes or an iterator of bytes) and
        answer are streamed, and yield the answer once it is known to be a success; an
        error answer raises as :meth:`call` does. A transport failure while the caller
        reads the answer is the caller's to map (it knows what was cut off)."""
        headers = {**self._auth_headers(), "content-type": content_type}
        with self._transport_errors(), self._client.stream(
                method, path, content=content, headers=headers) as response:
            self.last_request_id = response.headers.get("x-request-id")
            ctype = response.headers.get("content-type", "")
            if response.status_code >= 400 or ctype.startswith("application/problem+json"):
                response.read()
                raise _error_from(response)
            yield response

    @contextmanager
    def _transport_errors(self) -> Iterator[None]:
        """Map httpx's transport failures to ConnectionFailed (with the TLS reason and,
        over https, the client-certificate hint) and a bad address to InvalidArgument."""
        try:
            yield
        except httpx.TimeoutException:
            raise ConnectionFailed(f"timed out waiting for keykeeper at {self.addr}") from None
        except httpx.TransportError as exc:
            reason = _tls_reason(exc) or type(exc).__name__
            if isinstance(exc, httpx.RemoteProtocolError) and self.addr.startswith("https:"):
                reason += self._hint
            raise ConnectionFailed(f"cannot reach keykeeper at {self.addr} ({reason})") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise InvalidArgument(f"not a valid keykeeper address: {self.addr!r}") from None

    def call(
        self,
        method: str,
        path: str,
        result: type[T],
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
    ) -> T:
        """Send one request and decode its JSON answer as ``result``. Raises
        InvalidArgument, before sending, for a NaN or infinite float in ``body`` or
        ``params`` (naming the field), and the errors listed in the module docstring."""
        headers = self._auth_headers() if auth else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        _require_finite(query, "")
        content = None
        if body is not None:
            _require_finite(body, "")
            content = msgspec.json.encode({k: v for k, v in body.items() if v is not None})
            headers["content-type"] = "application/json"
        with self._transport_errors():
            response = self._client.request(
                method, path, content=content, params=query, headers=headers
            )
        self.last_request_id = response.headers.get("x-request-id")
        ctype = response.headers.get("content-type", "")
        if response.status_code >= 400 or ctype.startswith("application/problem+json"):
            raise _error_from(response)
        try:
            return msgspec.json.decode(response.content, type=result)
        except msgspec.DecodeError as exc:
            err = Internal(f"unexpected answer from keykeeper at {self.addr}: {exc}")
            raise _attach(err, response.status_code, response.headers.get("x-request-id")) from None
