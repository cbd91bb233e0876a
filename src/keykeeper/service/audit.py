"""Audit around every operation: the interface opens ``audited``, the service fills the
context, and exactly one record is written whether the operation succeeds or fails."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol

from keykeeper.audit.records import AuditRecord
from keykeeper.errors import KeykeeperError, Unavailable
from keykeeper.service.context import RequestContext

__all__ = ["AuditSink", "Auditor"]

log = logging.getLogger("keykeeper.audit")


class AuditSink(Protocol):
    def write(self, record: AuditRecord) -> None: ...


class Auditor:
    def __init__(self, sinks: list[AuditSink], clock: Callable[[], datetime]) -> None:
        self._sinks = sinks
        self._clock = clock

    @contextmanager
    def audited(self, ctx: RequestContext, operation: str) -> Iterator[None]:
        outcome, code = "success", None
        try:
            yield
        except KeykeeperError as exc:
            outcome, code = "error", exc.code
            raise
        except BaseException:
            outcome, code = "error", "internal"
            raise
        finally:
            record = AuditRecord(
                time=self._clock().isoformat().replace("+00:00", "Z"),
                request_id=ctx.request_id, interface=ctx.interface, operation=operation,
                principal=ctx.principal.name if ctx.principal else None, source=ctx.source,
                outcome=outcome, error_code=code, namespace=ctx.namespace, key_id=ctx.key_id,
                key_version=ctx.key_version, items=ctx.items, failed_items=ctx.failed_items)
            try:
                for sink in self._sinks:
                    sink.write(record)
            except OSError:
                # The record could not be kept: answer 503, never 500. (Writing before acting,
                # fail-closed, comes with the audit chain of the access-control issue.)
                log.exception("audit sink failed for request %s", ctx.request_id)
                raise Unavailable("the audit log cannot be written; the operator is "
                                  "alerted") from None
