"""In-process nodes over a real database (both backends), as tests/integration has them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.integration.conftest import PASSPHRASE, ROOT_TOKEN, Clock, Node, make_node
from tests.integration.conftest import node as node  # the one-node fixture, re-exported


@pytest.fixture
def nodes(database_url: str) -> Iterator[tuple[Node, Node]]:
    """Two nodes over one store sharing one clock; the first initialised, both unsealed."""
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    clock = Clock()
    a, b = make_node(database_url, clock), make_node(database_url, clock)
    a.services.system.init(PASSPHRASE, root_token=ROOT_TOKEN)
    a.services.system.unseal(PASSPHRASE)
    b.services.system.unseal(PASSPHRASE)
    yield a, b
    for n in (a, b):
        n.services.deps.engine.dispose()
