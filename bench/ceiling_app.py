"""Reference servers for bench/rest_encrypt.py: what the same uvicorn can do with no keykeeper.

``app``           a bare ASGI callable: reads the body, decodes it as JSON (msgspec) and
                  echoes it re-encoded. This is the *ceiling* every ratio is taken against.
``starlette_app`` the same echo through Starlette routing and a msgspec Struct decode,
                  the framework layer keykeeper uses (a second reference line).

Run them with the server settings keykeeper uses (log level warning, no access log, no
server header), e.g.::

    python -m uvicorn ceiling_app:app --app-dir bench --workers 1 \
        --log-level warning --no-access-log --no-server-header
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Bare ASGI echo: any path, any method; lifespan events are acknowledged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = _encoder.encode(_decoder.decode(b"".join(chunks) or b"{}"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _EchoItem(msgspec.Struct, omit_defaults=True):
    plaintext: bytes | None = None
    ciphertext: str | None = None
    context: dict[str, str] | None = None


class _EchoRequest(msgspec.Struct, omit_defaults=True):
    """The encrypt/decrypt request's shape: base64 is decoded into bytes, as keykeeper does."""

    plaintext: bytes | None = None
    ciphertext: str | None = None
    context: dict[str, str] | None = None
    items: list[_EchoItem] | None = None


_struct_decoder = msgspec.json.Decoder(_EchoRequest)


async def _echo(request: Request) -> Response:
    body = _struct_decoder.decode(await request.body() or b"{}")
    return Response(_encoder.encode(body), media_type="application/json")


starlette_app = Starlette(routes=[Route("/{path:path}", _echo, methods=["POST"])])
