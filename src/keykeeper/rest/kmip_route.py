"""``POST /kmip``: one KMIP Request Message over HTTPS, answered in the encoding it came
in (KMIP 2.1 §10.2 "HTTPS"; the JSON and XML encodings of the KMIP Profiles):

=============================================  =============================
Content-Type                                   encoding
=============================================  =============================
``application/octet-stream``                   binary TTLV
``application/json``                           JSON TTLV (kmip/ttlv/json.py)
``text/xml`` or ``application/xml``            XML TTLV (kmip/ttlv/xml.py)
=============================================  =============================

The caller authenticates as on every REST route: a bearer token, or without one the
verified TLS client certificate. Failures of KMIP (bad credentials, a malformed message,
sealed) are KMIP answers (HTTP 200, Result Status Operation Failed); an unknown
Content-Type is 415 and a body above 4 MiB 413 (problem+json). Each batch item is
audited as ``kmip.<operation>`` by the processor (kmip/processor.py); a body that does not
decode gets one ``kmip.unknown`` record, outcome error.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keykeeper.authz.model import Principal
from keykeeper.errors import InvalidArgument, KeykeeperError, Unauthenticated
from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.processor import Observer, Peer, Processor
from keykeeper.kmip.ttlv import Item, TtlvError, codec
from keykeeper.kmip.ttlv.json import from_json, to_json
from keykeeper.kmip.ttlv.xml import from_xml, to_xml
from keykeeper.rest.endpoint import bearer, client_certificate, read_body
from keykeeper.rest.problems import problem_response
from keykeeper.service.facade import Services

__all__ = ["kmip_endpoint"]

Decoder = Callable[[bytes], Item]
Encoder = Callable[[Item], bytes]


def _from_xml(data: bytes) -> Item:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TtlvError("the XML body is not UTF-8") from None
    return from_xml(text)


def _to_xml(item: Item) -> bytes:
    return to_xml(item).encode("utf-8")


_ENCODINGS: dict[str, tuple[str, Decoder, Encoder]] = {
    "application/octet-stream": ("application/octet-stream", codec.decode, codec.encode),
    "application/json": ("application/json", from_json, to_json),
    "application/xml": ("application/xml", _from_xml, _to_xml),
    "text/xml": ("text/xml; charset=utf-8", _from_xml, _to_xml),
}


def _unsupported() -> InvalidArgument:
    err = InvalidArgument("Content-Type must be application/octet-stream (TTLV), "
                          "application/json or text/xml / application/xml")
    err.http_status = 415
    return err


def kmip_endpoint(svc: Services, settings: KmipSettings,
                  observe: Observer | None = None) -> Callable[..., object]:
    """The Starlette endpoint of ``POST /kmip``, serving with ``settings``; ``observe``
    receives each batch item's metrics (Metrics.observe)."""
    processor = Processor(svc, settings, observe=observe)

    def serve(body: bytes, decode: Decoder, peer: Peer) -> Item:
        try:
            message = decode(body)
        except TtlvError as exc:
            processor.audit_refusal(peer)
            return processor.invalid(str(exc))
        return processor.process(message, peer)

    async def endpoint(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        encoding = _ENCODINGS.get(media)
        try:
            if encoding is None:
                raise _unsupported()
            body = await read_body(request.scope, request.receive)
        except KeykeeperError as exc:
            return problem_response(exc, secrets.token_hex(8))
        content_type, decode, encode = encoding
        token, cert = bearer(request.scope), client_certificate(request.scope)

        def authenticate() -> Principal:
            if token is not None:
                return svc.auth.authenticate(token)
            if cert is not None:
                return svc.auth.authenticate_certificate(cert)
            raise Unauthenticated("no bearer token and no client certificate")

        client = request.scope.get("client")
        peer = Peer("kmip-https", client[0] if client else None, authenticate)
        answer = await run_in_threadpool(serve, body, decode, peer)
        return Response(processor.encode(answer, encode), media_type=content_type)

    return endpoint
