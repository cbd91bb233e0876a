"""RFC 9457 problem+json responses, mapped once from the error tree."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from keykeeper.errors import KeykeeperError
from keykeeper.rest.schemas import Problem

PROBLEM_TYPE = "application/problem+json"
_encoder = msgspec.json.Encoder()


def problem_body(exc: KeykeeperError, request_id: str) -> bytes:
    return _encoder.encode(Problem(
        type=f"https://keykeeper.dev/errors/{exc.code}", title=exc.title,
        status=exc.http_status, detail=exc.detail, code=exc.code, request_id=request_id))


def problem_response(exc: KeykeeperError, request_id: str) -> Response:
    return Response(problem_body(exc, request_id), status_code=exc.http_status,
                    media_type=PROBLEM_TYPE, headers={"x-request-id": request_id})
