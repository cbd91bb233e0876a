"""One route as a plain ASGI callable: Starlette routes to it, nothing else wraps it.

Per request: build a context, open the audit scope, check seal state and the bearer
token (or, without one, the verified TLS client certificate), read the body from
``receive`` (4 MiB at most, 413 above), decode it with msgspec, for a mutating route
write the audit ``request`` record and wait for it, call the handler (storage-bound
handlers in the thread pool, the data plane inline), write the outcome record and wait
for it (without blocking the event loop), and send the encoded result -- or 503
``unavailable`` when the audit trail cannot record it.
Every :class:`KeykeeperError` becomes problem+json; anything else is logged and
answered as ``internal`` with no detail.
Bypassing Starlette's Request/Response objects here halves the framework's cost on
the hot path (bench/profile_app.py).
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from keykeeper.errors import (
    Internal,
    InvalidArgument,
    KeykeeperError,
    PayloadTooLarge,
    Sealed,
)
from keykeeper.monitor.metrics import Metrics
from keykeeper.rest.problems import PROBLEM_TYPE, problem_body, problem_headers
from keykeeper.rest.routes import Route
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services

__all__ = ["MAX_BODY", "Endpoint", "authenticate", "client_certificate", "read_body"]

log = logging.getLogger("keykeeper.rest")
MAX_BODY = 4 * 1024 * 1024
_JSON = b"application/json"
_TOO_LARGE = f"request body is larger than {MAX_BODY} bytes"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def client_certificate(scope: Scope) -> bytes | None:
    """The verified client certificate (DER) of a TLS connection, from the ASGI TLS
    extension (rest/tls.py puts it there); None without TLS or without a certificate."""
    extensions = scope.get("extensions")
    tls = extensions.get("tls") if extensions else None
    chain = tls.get("client_cert_chain") if tls else None
    return ssl.PEM_cert_to_DER_cert(chain[0]) if chain else None


def bearer(scope: Scope) -> str | None:
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def read_body(scope: Scope, receive: Receive) -> bytes:
    length = _header(scope, b"content-length")
    if length is not None and (not (length.isascii() and length.isdigit())
                               or int(length) > MAX_BODY):
        raise PayloadTooLarge(_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(_TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def decode_body(decoder: Any, raw: bytes) -> Any:
    """The JSON body decoded into the route's msgspec struct (an empty body is ``{}``);
    InvalidArgument naming the field for a schema mismatch, or for text that is not JSON."""
    try:
        return decoder.decode(raw or b"{}")
    except msgspec.ValidationError as exc:
        raise InvalidArgument(f"invalid request body: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidArgument("request body is not valid JSON") from None


async def authenticate(svc: Services, scope: Scope, ctx: RequestContext) -> None:
    """Set ``ctx.token`` and ``ctx.principal`` from the bearer token or, without one, the
    verified client certificate, and check the principal's rate limit. Raises
    Unauthenticated, ResourceExhausted."""
    token = bearer(scope)
    # GET /v1/tokens/self names the token of the call; the audit record
    # holds its HMAC (a rejected token's too).
    ctx.token = token
    # No bearer token: a verified client certificate (mTLS) may name the
    # principal instead (service/cert_auth.py). A token always wins.
    cert = client_certificate(scope) if token is None else None
    if cert is not None:
        ctx.principal = (svc.auth.cached_certificate(cert)
                         or await run_in_threadpool(svc.auth.authenticate_certificate, cert))
    else:
        ctx.principal = (svc.auth.cached(token) or
                         await run_in_threadpool(svc.auth.authenticate, token))
    svc.limits.check_principal(ctx.principal)


class Endpoint:
    """The ASGI app of one route of the table (rest/routes.py)."""

    def __init__(self, svc: Services, metrics: Metrics, route: Route) -> None:
        self.svc, self.metrics, self.route = svc, metrics, route
        self.decoder: msgspec.json.Decoder[Any] | None = (
            msgspec.json.Decoder(route.request) if route.request is not None else None)
        self.encoder = msgspec.json.Encoder()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        route, svc = self.route, self.svc
        client = scope.get("client")
        ctx = RequestContext(interface="rest", source=client[0] if client else None)
        status, content_type, outcome = route.status, _JSON, "success"
        extra: list[tuple[bytes, bytes]] = []
        try:
            async with svc.audit.scope(ctx, route.operation, route.audit) as audit:
                if route.unsealed and svc.system.sealed():
                    raise Sealed("keykeeper is sealed; unseal it first" if
                                 svc.system.initialized() else
                                 "keykeeper is not initialized; run keykeeper init")
                if route.auth:
                    await authenticate(svc, scope, ctx)
                body: Any = None
                if self.decoder is not None:
                    body = decode_body(self.decoder, await read_body(scope, receive))
                    ctx.encryption_context = getattr(body, "context", None)
                params: dict[str, Any] = scope.get("path_params", {})
                if route.query:
                    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                      keep_blank_values=True)
                    params = {**dict(query), **params}
                if any("\x00" in v for v in params.values() if isinstance(v, str)):
                    raise InvalidArgument("path and query values must not contain NUL")
                if route.mutating:
                    await audit.request()  # recorded before it acts, or 503 (fail closed)
                # Batches for asymmetric keys go to the thread pool: 1,000 RSA items would
                # hold the event loop for over a second (there the GIL is handed over every
                # switch interval). A symmetric batch costs ~7 ms and runs inline, where it
                # does not pay for handing the GIL back and forth.
                if route.offload or (getattr(body, "items", None) is not None
                                     and not svc.crypto.is_symmetric(ctx, params["key"])):
                    result = await run_in_threadpool(route.handler, svc, ctx, params, body)
                else:
                    result = route.handler(svc, ctx, params, body)
            payload = self.encoder.encode(result)
        except KeykeeperError as exc:
            status, content_type, outcome = exc.http_status, PROBLEM_TYPE.encode(), exc.code
            payload = problem_body(exc, ctx.request_id)
            extra = problem_headers(exc)
        except Exception:
            log.exception("internal error in %s (request %s)", route.operation, ctx.request_id)
            status, content_type, outcome = 500, PROBLEM_TYPE.encode(), "internal"
            payload = problem_body(Internal(), ctx.request_id)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", content_type), (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", ctx.request_id.encode()), *extra]})
        await send({"type": "http.response.body", "body": payload})
        self.metrics.observe(route.operation, outcome, time.perf_counter() - started)
