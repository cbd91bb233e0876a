"""A scripted server for SDK and CLI unit tests: an httpx MockTransport handler that answers
with queued responses and records the requests it saw. (Live-server tests use
tests/support/server.py.)"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

# A key object as the server answers it (the fields of rest/schemas.py KeyOut).
KEY_JSON: dict[str, Any] = {
    "id": "k_01",
    "name": "orders",
    "namespace": "default",
    "purpose": "encrypt",
    "algorithm": "AES_256_GCM",
    "state": "active",
    "primary_version": 1,
    "description": "",
    "labels": {"team": "a"},
    "exportable": False,
    "protection": "software",
    "rotation_period": None,
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:00Z",
    "destruction_time": None,
    "compromised_at": None,
    "compromise_reason": None,
}


@dataclass
class Server:
    """Answers requests with queued (status, json) pairs and records what it saw."""

    answers: list[httpx.Response] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def reply(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.answers.append(httpx.Response(status, json=body, headers=headers))

    def problem(self, code: str, status: int, detail: str = "boom", rid: str = "req-1") -> None:
        body = {
            "type": "about:blank",
            "title": code,
            "status": status,
            "detail": detail,
            "code": code,
            "request_id": rid,
        }
        self.answers.append(
            httpx.Response(
                status,
                content=json.dumps(body).encode(),
                headers={"content-type": "application/problem+json"},
            )
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            return httpx.Response(500, text="no answer scripted")
        return self.answers.pop(0)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)
