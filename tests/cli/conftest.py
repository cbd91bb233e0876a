"""CliRunner with the SDK pointed at a scripted httpx MockTransport."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app

KEY_JSON: dict[str, Any] = {
    "id": "k_01",
    "name": "orders",
    "namespace": "default",
    "purpose": "encrypt",
    "algorithm": "AES_256_GCM",
    "state": "active",
    "primary_version": 1,
    "description": "card data",
    "labels": {"team": "a"},
    "exportable": False,
    "protection": "software",
    "rotation_period": 7776000,
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:00Z",
    "destruction_time": None,
    "compromised_at": None,
    "compromise_reason": None,
}


@dataclass
class Cli:
    """Scripted server answers, recorded requests, and a runner."""

    answers: list[httpx.Response] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def reply(self, body: Any, status: int = 200) -> None:
        self.answers.append(httpx.Response(status, json=body))

    def problem(self, code: str, status: int, detail: str) -> None:
        body = {
            "type": "about:blank",
            "title": code,
            "status": status,
            "detail": detail,
            "code": code,
            "request_id": "r1",
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
        return self.answers.pop(0) if self.answers else httpx.Response(500, text="unscripted")

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)

    def run(
        self,
        args: Sequence[str],
        input: bytes | str | None = None,
        env: dict[str, str] | None = None,
    ) -> Result:
        state = State(transport=httpx.MockTransport(self.handler))
        base_env = {"KEYKEEPER_ADDR": "http://kk.test:8200", "KEYKEEPER_TOKEN": "tok"}
        return CliRunner().invoke(
            app, list(args), input=input, env={**base_env, **(env or {})}, obj=state
        )


@pytest.fixture
def cli() -> Cli:
    return Cli()
