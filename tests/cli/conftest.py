"""CliRunner with the SDK pointed at a scripted httpx MockTransport."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from tests.support.scripted import KEY_JSON as BASE_KEY_JSON
from tests.support.scripted import Server

KEY_JSON: dict[str, Any] = {**BASE_KEY_JSON, "description": "card data", "rotation_period": 7776000}


@dataclass
class Cli(Server):
    """Scripted server answers, recorded requests, and a CLI runner."""

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
