"""Audit records to an HTTP endpoint: each batch POSTed as newline-delimited JSON.

The body is the records' exact JSON lines, one per line (``application/x-ndjson``), so the
receiver can store and verify them as the file holds them. Any answer other than 2xx, a
connection failure or the timeout counts as a failed batch. Headers (for instance an
``Authorization``) can be given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from keykeeper.audit.writer import Entry

__all__ = ["WebhookAuditSink"]


class WebhookAuditSink:
    """POSTs batches to ``url``; raises OSError when a batch was not accepted."""

    def __init__(self, url: str, *, timeout: float = 2.0,
                 headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http:// or https://, got {url!r}")
        self.url = url
        self._client = httpx.Client(timeout=timeout, transport=transport, headers={
            "content-type": "application/x-ndjson", "user-agent": "keykeeper-audit",
            **(headers or {})})

    def write_batch(self, entries: Sequence[Entry]) -> None:
        body = b"".join([e.line + b"\n" for e in entries])
        try:
            response = self._client.post(self.url, content=body)
        except httpx.HTTPError as exc:
            raise OSError(f"webhook {self.url}: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise OSError(f"webhook {self.url} answered HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()
