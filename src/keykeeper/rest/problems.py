"""RFC 9457 problem+json responses, mapped once from the error tree."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from keykeeper.errors import ApprovalRequired, KeykeeperError, ResourceExhausted
from keykeeper.rest.schemas import Problem

PROBLEM_TYPE = "application/problem+json"
_encoder = msgspec.json.Encoder()


def problem_body(exc: KeykeeperError, request_id: str) -> bytes:
    return _encoder.encode(Problem(
        type=f"https://keykeeper.dev/errors/{exc.code}", title=exc.title,
        status=exc.http_status, detail=exc.detail, code=exc.code, request_id=request_id,
        approval_id=exc.approval_id if isinstance(exc, ApprovalRequired) else None,
        retry_after=exc.retry_after if isinstance(exc, ResourceExhausted) else None))


def problem_headers(exc: KeykeeperError) -> list[tuple[bytes, bytes]]:
    """Extra headers an error carries: ``Retry-After`` (RFC 9110 §10.2.3) on 429."""
    if isinstance(exc, ResourceExhausted) and exc.retry_after is not None:
        return [(b"retry-after", str(exc.retry_after).encode())]
    return []


def problem_response(exc: KeykeeperError, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    headers.update((k.decode(), v.decode()) for k, v in problem_headers(exc))
    return Response(problem_body(exc, request_id), status_code=exc.http_status,
                    media_type=PROBLEM_TYPE, headers=headers)
