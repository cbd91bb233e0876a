"""The two streaming endpoints of the backup routes: raw ASGI callables, as
rest/endpoint.py's, that move archives in constant memory (docs/api.md, Backups).

``POST /v1/sys/backup`` (:class:`BackupEndpoint`): the options are a JSON body; the answer
is ``application/x-ndjson``: one line of results (backup id, signer, the shares shown
once), then the archive, line by line, as the service makes it. Everything that can be
refused (authorization, options, the audit checkpoint, the first records) is refused
before the first byte, as problem+json. The last chunk, which holds the manifest and the
signed trailer, goes out only after the outcome audit record is kept: a failure
part-way, or an audit trail that cannot record the backup, breaks the connection off
without it, so the client is left with an archive that never verifies.

``POST /v1/sys/restore`` (:class:`RestoreEndpoint`): the body is one JSON line of options
(at most 64 KiB), then the archive. The caller is authorized before anything is read
past the options; the archive is spooled to an anonymous temporary file (unlinked at
once, so nothing is left behind even by a crash), capped at
``KEYKEEPER_RESTORE_MAX_BYTES`` (default 4 GiB; 413 above), and hashed (SHA-256, the
digest a forced restore's approval names) before the service reads it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

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
from keykeeper.rest import backup_handlers
from keykeeper.rest.backup_schemas import RestoreRequest
from keykeeper.rest.endpoint import authenticate, decode_body, read_body
from keykeeper.rest.problems import PROBLEM_TYPE, problem_body, problem_headers
from keykeeper.rest.routes import Route
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services

__all__ = ["ARCHIVE_TYPE", "BackupEndpoint", "RestoreEndpoint", "max_restore_bytes"]

log = logging.getLogger("keykeeper.rest")

ARCHIVE_TYPE = b"application/x-ndjson"
CHUNK = 64 * 1024                # bytes per send of the archive
MAX_OPTIONS = 64 * 1024          # bytes of the restore options line
DRAIN = 64 * 1024 * 1024         # bytes of a refused upload read (and dropped) before answering
DEFAULT_MAX_RESTORE = 4 << 30    # bytes


def max_restore_bytes() -> int:
    """``KEYKEEPER_RESTORE_MAX_BYTES`` (bytes; default 4 GiB): the largest archive a restore
    accepts. InvalidArgument for a value that is not a positive integer."""
    raw = os.environ.get("KEYKEEPER_RESTORE_MAX_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_RESTORE
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidArgument("KEYKEEPER_RESTORE_MAX_BYTES must be a positive number of bytes")
    return int(raw)


def _next_chunk(lines: Iterator[bytes]) -> bytes:
    """Up to about CHUNK bytes of whole lines (b"" at the end); runs in the thread pool."""
    parts: list[bytes] = []
    size = 0
    for line in lines:
        parts.append(line)
        size += len(line)
        if size >= CHUNK:
            break
    return b"".join(parts)


class _StreamEndpoint:
    def __init__(self, svc: Services, metrics: Metrics, route: Route) -> None:
        self.svc, self.metrics, self.route = svc, metrics, route
        self.encoder = msgspec.json.Encoder()

    def _context(self, scope: Scope) -> RequestContext:
        client = scope.get("client")
        return RequestContext(interface="rest", source=client[0] if client else None)

    async def _admit(self, scope: Scope, ctx: RequestContext) -> None:
        svc = self.svc
        if svc.system.sealed():
            raise Sealed("keykeeper is sealed; unseal it first" if svc.system.initialized()
                         else "keykeeper is not initialized; run keykeeper init")
        await authenticate(svc, scope, ctx)

    async def _problem(self, send: Send, ctx: RequestContext, exc: KeykeeperError) -> None:
        payload = problem_body(exc, ctx.request_id)
        await send({"type": "http.response.start", "status": exc.http_status, "headers": [
            (b"content-type", PROBLEM_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", ctx.request_id.encode()), *problem_headers(exc)]})
        await send({"type": "http.response.body", "body": payload})


class BackupEndpoint(_StreamEndpoint):
    """``POST /v1/sys/backup`` (see the module docstring)."""

    def __init__(self, svc: Services, metrics: Metrics, route: Route) -> None:
        super().__init__(svc, metrics, route)
        assert route.request is not None
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(route.request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        ctx = self._context(scope)
        outcome, started = "success", False
        lines: Iterator[bytes] | None = None
        try:
            async with self.svc.audit.scope(ctx, self.route.operation) as audit:
                await self._admit(scope, ctx)
                body = decode_body(self.decoder, await read_body(scope, receive))
                await audit.request()
                plan = await run_in_threadpool(self.route.handler, self.svc, ctx, {}, body)
                assert self.svc.backups is not None
                lines = self.svc.backups.create.stream(ctx, plan)
                pending = await run_in_threadpool(_next_chunk, lines)  # refusals: before
                first = self.encoder.encode(backup_handlers.started(plan)) + b"\n"
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", ARCHIVE_TYPE), (b"cache-control", b"no-store"),
                    (b"x-request-id", ctx.request_id.encode())]})
                started = True
                await send({"type": "http.response.body", "body": first, "more_body": True})
                while chunk := await run_in_threadpool(_next_chunk, lines):
                    await send({"type": "http.response.body", "body": pending,
                                "more_body": True})
                    pending = chunk
            # The outcome record is kept: the manifest and trailer may go out now.
            await send({"type": "http.response.body", "body": pending, "more_body": False})
        except KeykeeperError as exc:
            outcome = exc.code
            if not started:
                await self._problem(send, ctx, exc)
            else:
                log.warning("backup broken off (request %s): %s: %s", ctx.request_id,
                            exc.code, exc.detail)
        except Exception:
            outcome = "internal"
            log.exception("internal error in %s (request %s)", self.route.operation,
                          ctx.request_id)
            if not started:
                await self._problem(send, ctx, Internal())
        finally:
            if lines is not None and hasattr(lines, "close"):
                await run_in_threadpool(lines.close)  # ends the read snapshot
        # A response started and not completed is broken off by the server: the client
        # sees an incomplete body and the archive has no trailer.
        self.metrics.observe(self.route.operation, outcome, time.perf_counter() - began)


class _Body:
    """The request body from ``receive``, read once: a first line, then chunks."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._buffer = b""
        self._done = False

    async def _more(self) -> bytes:
        if self._done:
            return b""
        message = await self._receive()
        if message["type"] != "http.request":
            raise InvalidArgument("the upload was cut off before its end")
        self._done = not message.get("more_body", False)
        return bytes(message.get("body", b""))

    async def line(self, limit: int) -> bytes:
        while b"\n" not in self._buffer:
            if len(self._buffer) > limit:
                break
            more = await self._more()
            if not more and self._done:
                break
            self._buffer += more
        line, _, rest = self._buffer.partition(b"\n")
        if len(line) > limit:
            raise PayloadTooLarge(f"the restore options line is longer than {limit} bytes "
                                  "(send one JSON line of options, then the archive)")
        self._buffer = rest
        return line

    async def drain(self, limit: int) -> None:
        """Read and drop what is left of the body, up to ``limit`` bytes, so that a client
        still sending its upload reads the error answer instead of a broken pipe."""
        dropped = 0
        try:
            while not self._done and dropped <= limit:
                dropped += len(await self._more())
        except InvalidArgument:
            pass

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._buffer:
            yield self._buffer
            self._buffer = b""
        while not self._done:
            chunk = await self._more()
            if chunk:
                yield chunk


def _opener(spool: IO[bytes]) -> Any:
    def open_archive() -> IO[bytes]:
        stream = os.fdopen(os.dup(spool.fileno()), "rb")
        stream.seek(0)
        return stream

    return open_archive


class RestoreEndpoint(_StreamEndpoint):
    """``POST /v1/sys/restore`` (see the module docstring)."""

    def __init__(self, svc: Services, metrics: Metrics, route: Route) -> None:
        super().__init__(svc, metrics, route)
        self.decoder = msgspec.json.Decoder(RestoreRequest)
        self.max_bytes = max_restore_bytes()

    async def _spool(self, scope: Scope, body: _Body, spool: IO[bytes]) -> str:
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes + MAX_OPTIONS:
            raise PayloadTooLarge(f"the archive is larger than {self.max_bytes} bytes "
                                  "(KEYKEEPER_RESTORE_MAX_BYTES)")
        digest = hashlib.sha256()
        size = 0
        async for chunk in body.chunks():
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLarge(f"the archive is larger than {self.max_bytes} bytes "
                                      "(KEYKEEPER_RESTORE_MAX_BYTES)")
            digest.update(chunk)
            spool.write(chunk)
        spool.flush()
        return digest.hexdigest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        ctx = self._context(scope)
        status, content_type, outcome = 200, b"application/json", "success"
        extra: list[tuple[bytes, bytes]] = []
        spool: IO[bytes] | None = None
        body = _Body(receive)
        try:
            async with self.svc.audit.scope(ctx, self.route.operation) as audit:
                await self._admit(scope, ctx)
                line = await body.line(MAX_OPTIONS)
                try:
                    options = self.decoder.decode(line.strip() or b"{}")
                except msgspec.ValidationError as exc:
                    raise InvalidArgument(f"invalid restore options: {exc}") from None
                except msgspec.DecodeError:
                    raise InvalidArgument("the restore options (the first line) are not "
                                          "valid JSON") from None
                # Authorized before the archive is read: nobody else can fill the disk.
                await run_in_threadpool(self.svc.authz.require, ctx, "backup.restore")
                spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finally)
                digest = await self._spool(scope, body, spool)
                await audit.request()
                upload = backup_handlers.RestoreUpload(options, _opener(spool), digest)
                result = await run_in_threadpool(self.route.handler, self.svc, ctx, {},
                                                 upload)
            payload = self.encoder.encode(result)
        except KeykeeperError as exc:
            status, content_type, outcome = exc.http_status, PROBLEM_TYPE.encode(), exc.code
            payload = problem_body(exc, ctx.request_id)
            extra = problem_headers(exc)
        except Exception:
            log.exception("internal error in %s (request %s)", self.route.operation,
                          ctx.request_id)
            status, content_type, outcome = 500, PROBLEM_TYPE.encode(), "internal"
            payload = problem_body(Internal(), ctx.request_id)
        finally:
            if spool is not None:
                spool.close()
        if status >= 400:
            await body.drain(DRAIN)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", content_type), (b"content-length", str(len(payload)).encode()),
            (b"x-request-id", ctx.request_id.encode()), *extra]})
        await send({"type": "http.response.body", "body": payload})
        self.metrics.observe(self.route.operation, outcome, time.perf_counter() - began)
