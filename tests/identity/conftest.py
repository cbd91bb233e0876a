"""In-process services over a real store (SQLite file and PostgreSQL schema), one
initialised node per test module and backend, with an injectable clock; and helpers that
make principals with tokens through the service layer itself."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keykeeper.service.context import RequestContext
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.conftest import BACKENDS, PgSchema, pg_available
from tests.integration.conftest import PASSPHRASE, ROOT_TOKEN, Clock, Node, make_node

__all__ = ["PASSPHRASE", "ROOT_TOKEN", "Api", "Caller", "make_caller", "root", "unique"]


@dataclass
class Caller:
    name: str
    token: str
    accessor: str

    def ctx(self, node: Node) -> RequestContext:
        """A request context as the REST layer builds it for this caller's token."""
        principal = node.services.auth.authenticate(self.token)
        return RequestContext(interface="test", principal=principal, token=self.token)


def root(node: Node) -> RequestContext:
    return RequestContext(interface="test", principal=node.services.auth.authenticate(
        ROOT_TOKEN), token=ROOT_TOKEN)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def make_caller(node: Node, roles: tuple[str, ...] = (), *, name: str | None = None,
                **fields: Any) -> Caller:
    """A principal made by root (root passes the dual-control gate) and a token of it."""
    name = name or unique("p")
    ident = node.services.identity
    ident.principals.create(root(node), name=name, roles=roles, **fields)
    made = ident.tokens.create(root(node), principal=name)
    return Caller(name, made.token, made.info.accessor)


def _open_node(backend: str, directory: Path) -> tuple[Node, PgSchema | None]:
    schema = PgSchema() if backend == "postgresql" else None
    url = schema.url if schema else f"sqlite:///{directory / 'keykeeper.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    node = make_node(url, Clock())
    node.services.system.init(PASSPHRASE, root_token=ROOT_TOKEN)
    node.services.system.unseal(PASSPHRASE)
    return node, schema


@pytest.fixture(scope="module", params=BACKENDS)
def node(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One node per module and backend: tests use unique names and move the clock forward
    only."""
    if request.param == "postgresql" and (reason := pg_available()):
        pytest.skip(reason)
    n, schema = _open_node(str(request.param), tmp_path_factory.mktemp("identity"))
    yield n
    n.services.deps.engine.dispose()
    if schema:
        schema.drop()


@pytest.fixture
def fresh_node(backend: str, tmp_path: Path) -> Iterator[Node]:
    """A node of its own, for tests that retire the root token."""
    n, schema = _open_node(backend, tmp_path)
    yield n
    n.services.deps.engine.dispose()
    if schema:
        schema.drop()


class Api:
    """The REST app of a node, in process (Starlette's TestClient)."""

    def __init__(self, node: Node) -> None:
        with warnings.catch_warnings():  # Starlette's notice about httpx versions
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        from keykeeper.monitor.metrics import Metrics
        from keykeeper.rest.app import create_app

        self.node = node
        metrics = Metrics(lambda: {}, lambda: node.services.deps.custody.sealed)
        self.client = TestClient(create_app(node.services, metrics),
                                 raise_server_exceptions=True)

    def request(self, method: str, path: str, json: Any = None, *,
                token: str | None = ROOT_TOKEN, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.request(method, path, json=json, headers=headers,
                                   params=params or None)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, {} if json is None else json, **kw)

    def caller(self, roles: tuple[str, ...] = (), **fields: Any) -> Caller:
        return make_caller(self.node, roles, **fields)


@pytest.fixture(scope="module")
def api(node: Node) -> Api:
    return Api(node)
