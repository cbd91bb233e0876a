"""The Starlette application: the route table bound to the service layer.

Per request: build a context, open the audit record, check seal state and the
bearer token, read the body (4 MiB at most), decode it with msgspec, call the
handler (storage-bound handlers in the thread pool, the data plane inline), and
encode the result; every :class:`KeykeeperError` becomes problem+json, and
anything else a logged ``internal`` error with no detail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from keykeeper.errors import (
    Internal,
    InvalidArgument,
    KeykeeperError,
    NotFound,
    PayloadTooLarge,
    Sealed,
    error_for_code,
)
from keykeeper.monitor.metrics import Metrics
from keykeeper.rest.openapi import build_openapi
from keykeeper.rest.problems import problem_response
from keykeeper.rest.routes import ROUTES, Route
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services

__all__ = ["MAX_BODY", "create_app"]

log = logging.getLogger("keykeeper.rest")
MAX_BODY = 4 * 1024 * 1024
_encoder = msgspec.json.Encoder()


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _endpoint(svc: Services, metrics: Metrics,
              route: Route) -> Callable[[Request], Awaitable[Response]]:
    decoder: msgspec.json.Decoder[Any] | None = (
        msgspec.json.Decoder(route.request) if route.request is not None else None)

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        ctx = RequestContext(interface="rest",
                             source=request.client.host if request.client else None)
        outcome = "success"
        try:
            with svc.audit.audited(ctx, route.operation) if route.audit else nullcontext():
                if route.unsealed and svc.deps.custody.sealed:
                    raise Sealed("keykeeper is sealed; unseal it first")
                if route.auth:
                    ctx.principal = svc.auth.authenticate(_bearer(request))
                body: Any = None
                if decoder is not None:
                    raw = await _read_body(request)
                    try:
                        body = decoder.decode(raw or b"{}")
                    except msgspec.ValidationError as exc:
                        raise InvalidArgument(f"invalid request body: {exc}") from None
                    except msgspec.DecodeError:
                        raise InvalidArgument("request body is not valid JSON") from None
                params = ({**request.query_params, **request.path_params} if route.query
                          else request.path_params)
                if route.offload:
                    result = await run_in_threadpool(route.handler, svc, ctx, params, body)
                else:
                    result = route.handler(svc, ctx, params, body)
            response = Response(_encoder.encode(result), status_code=route.status,
                                media_type="application/json",
                                headers={"x-request-id": ctx.request_id})
        except KeykeeperError as exc:
            outcome = exc.code
            response = problem_response(exc, ctx.request_id)
        except Exception:
            log.exception("internal error in %s (request %s)", route.operation, ctx.request_id)
            outcome = "internal"
            response = problem_response(Internal(), ctx.request_id)
        metrics.observe(route.operation, outcome, time.perf_counter() - started)
        return response

    return endpoint


def create_app(svc: Services, metrics: Metrics) -> Starlette:
    # Data-plane routes first: Starlette tries patterns in order, and they are the hot path.
    ordered = sorted(ROUTES, key=lambda r: r.offload)
    routes = [StarletteRoute(r.path, _endpoint(svc, metrics, r), methods=[r.method])
              for r in ordered]
    openapi = _encoder.encode(build_openapi())

    async def openapi_endpoint(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def metrics_endpoint(request: Request) -> Response:
        payload = await run_in_threadpool(metrics.render)
        return Response(payload, media_type="text/plain; version=0.0.4")

    routes.append(StarletteRoute("/openapi.json", openapi_endpoint, methods=["GET"]))
    routes.append(StarletteRoute("/metrics", metrics_endpoint, methods=["GET"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err: KeykeeperError = NotFound("no such route")
        elif exc.status_code == 405:
            err = InvalidArgument("method not allowed on this route")
            err.http_status = 405
        else:
            err = error_for_code("invalid_argument")(exc.detail or "bad request")
        return problem_response(err, "-")

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(Internal(), "-")

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error,
                                                        Exception: internal_error})
