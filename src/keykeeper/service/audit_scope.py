"""The audit scope of one REST request, and how a request's end maps to an outcome."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING

from keykeeper.errors import ApprovalRequired, KeykeeperError
from keykeeper.service.context import RequestContext

if TYPE_CHECKING:
    from keykeeper.service.audit import Auditor

__all__ = ["AuditScope", "outcome_of"]


def outcome_of(exc: BaseException | None) -> tuple[str, str | None]:
    """``(outcome, error_code)`` of a request that ended with ``exc`` (None: success)."""
    if exc is None:
        return "success", None
    if isinstance(exc, ApprovalRequired):
        return "pending", exc.code
    if isinstance(exc, KeykeeperError):
        return "error", exc.code
    return "error", "internal"



class AuditScope:
    """``async with auditor.scope(ctx, op) as audit:`` around one REST request.

    Inside, a mutating route calls ``await audit.request()`` right before acting: the
    ``request`` record is written and waited for (Unavailable if it cannot be). On exit the
    outcome record is written and waited for; if it cannot be kept, Unavailable replaces
    the answer.
    """

    __slots__ = ("_auditor", "_ctx", "_enabled", "_operation", "_requested")

    def __init__(self, auditor: Auditor, ctx: RequestContext, operation: str,
                 enabled: bool) -> None:
        self._auditor, self._ctx, self._operation = auditor, ctx, operation
        self._enabled = enabled
        self._requested = False

    async def __aenter__(self) -> AuditScope:
        return self

    async def request(self) -> None:
        if not self._enabled:
            return
        auditor = self._auditor
        entry = auditor.record(self._ctx, self._operation, "requested", phase="request",
                               loop=asyncio.get_running_loop())
        await auditor.wait_async(entry)
        self._requested = True

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._enabled:
            return
        auditor = self._auditor
        outcome, code = outcome_of(exc)
        phase = "response" if self._requested else None
        if isinstance(exc, asyncio.CancelledError):
            auditor.record(self._ctx, self._operation, "error", "cancelled", phase=phase)
            return
        entry = auditor.record(self._ctx, self._operation, outcome, code, phase=phase,
                               loop=asyncio.get_running_loop())
        await auditor.wait_async(entry)
