"""The Starlette application: the route table bound to the service layer
(each route an :class:`~keykeeper.rest.endpoint.Endpoint`), plus ``/openapi.json``,
``/metrics``, and problem+json for unknown routes and methods."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Lifespan

from keykeeper.errors import (
    Internal,
    InvalidArgument,
    KeykeeperError,
    NotFound,
)
from keykeeper.kmip.call import KmipSettings
from keykeeper.monitor.metrics import Metrics
from keykeeper.rest.dispatch import DataPlaneDispatch
from keykeeper.rest.endpoint import Endpoint, bearer, client_certificate
from keykeeper.rest.kmip_route import kmip_endpoint
from keykeeper.rest.openapi import build_openapi
from keykeeper.rest.problems import problem_response
from keykeeper.rest.routes import ROUTES
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services

__all__ = ["create_app"]

log = logging.getLogger("keykeeper.rest")
_encoder = msgspec.json.Encoder()


def create_app(svc: Services, metrics: Metrics, lifespan: Lifespan[Any] | None = None,
               *, metrics_unauthenticated: bool = False,
               kmip: KmipSettings | None = None) -> ASGIApp:
    """The ASGI app. ``metrics_unauthenticated``: serve ``/metrics`` without a token
    (``KEYKEEPER_METRICS_UNAUTHENTICATED``); by default it needs a bearer token whose
    principal may ``metrics.read`` (as Vault's ``sys/metrics``): the series name key ids,
    namespaces and per-key counts. ``kmip``: the settings of ``POST /kmip``
    (rest/kmip_route.py)."""
    endpoints = {r: (r.endpoint or Endpoint)(svc, metrics, r) for r in ROUTES}
    routes = [StarletteRoute(r.path, endpoints[r], methods=[r.method]) for r in ROUTES]
    data_plane = {(r.method, r.path.rsplit("/", 1)[1]): endpoints[r] for r in ROUTES
                  if r.path.count("/") == 4 and r.path.startswith("/v1/keys/{key}/")}
    openapi = _encoder.encode(build_openapi())

    async def openapi_endpoint(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    def authorize_metrics(token: str | None, cert: bytes | None) -> None:
        ctx = RequestContext(interface="rest", token=token)
        ctx.principal = (svc.auth.authenticate_certificate(cert) if token is None and cert
                         else svc.auth.authenticate(token))
        svc.authz.require(ctx, "metrics.read")

    async def metrics_endpoint(request: Request) -> Response:
        if not metrics_unauthenticated:
            try:
                await run_in_threadpool(authorize_metrics, bearer(request.scope),
                                        client_certificate(request.scope))
            except KeykeeperError as exc:
                return problem_response(exc, secrets.token_hex(8))
        payload = await run_in_threadpool(metrics.render)
        return Response(payload, media_type="text/plain; version=0.0.4")

    routes.append(StarletteRoute("/openapi.json", openapi_endpoint, methods=["GET"]))
    routes.append(StarletteRoute("/metrics", metrics_endpoint, methods=["GET"]))
    routes.append(StarletteRoute("/kmip", kmip_endpoint(svc, kmip or KmipSettings(),
                                                         metrics.observe),
                                 methods=["POST"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err: KeykeeperError = NotFound("no such route")
        elif exc.status_code == 405:
            err = InvalidArgument("method not allowed on this route")
            err.http_status = 405
        else:
            err = InvalidArgument(exc.detail or "bad request")
        return problem_response(err, secrets.token_hex(8))

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem_response(Internal(), secrets.token_hex(8))

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error,
                                                       Exception: internal_error},
                    lifespan=lifespan)
    # No 307 to a slash-terminated path: its Location would follow the client's Host header
    # and a client that follows it would resend the body (plaintext) there.
    app.router.redirect_slashes = False
    return DataPlaneDispatch(app, data_plane)
