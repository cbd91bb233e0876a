"""Table dispatch for the data plane, in front of Starlette's router.

``/v1/keys/{key}/{operation}`` for the data-plane routes (encrypt, decrypt, sign, ...)
is one dict lookup here instead of a regex per route plus Starlette's middleware
stack; everything else goes to the Starlette app unchanged. The key segment has the
same meaning as Starlette's ``{key}`` (one path segment, already percent-decoded by
the server), and each :class:`~keykeeper.rest.endpoint.Endpoint` handles its own
errors, so behaviour is the same either way (tests/rest checks both paths agree).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from keykeeper.rest.endpoint import Endpoint

__all__ = ["DataPlaneDispatch"]

_PREFIX = "/v1/keys/"


class DataPlaneDispatch:
    def __init__(self, app: ASGIApp, endpoints: dict[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(_PREFIX):
                key, sep, operation = path[len(_PREFIX):].partition("/")
                if sep and key and "/" not in operation:
                    endpoint = self.endpoints.get((scope["method"], operation))
                    if endpoint is not None:
                        scope["path_params"] = {"key": key}
                        await endpoint(scope, receive, send)
                        return
        await self.app(scope, receive, send)
