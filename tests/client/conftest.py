"""A scripted httpx MockTransport for the SDK's HTTP-mapping tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from keykeeper.client import Client
from tests.support.scripted import Server


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client("http://kk.test:8200", "tok", transport=httpx.MockTransport(server.handler)) as c:
        yield c


Handler = Callable[[httpx.Request], httpx.Response]
