"""HSM-protected keys on SoftHSM2: in-process services whose custody holds a real token
(tests/support/softhsm.py), on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from keykeeper.custody.hsm.token import HsmConfig, Token
from keykeeper.custody.keyring import Custody
from keykeeper.service.audit import Auditor
from keykeeper.service.context import Principal, RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.facade import Services, build_services
from keykeeper.service.key_args import CreateKey
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.integration.conftest import Clock, ListSink
from tests.support.softhsm import LIBRARY, SoftToken, new_token

__all__ = ["HsmNode", "hsm_token", "make_hsm_node", "token_for"]

PASSPHRASE = "hsm test passphrase"


def hsm_token() -> SoftToken:
    """A fresh token, visible in this process: SoftHSM reads its token directory at
    ``C_Initialize``, so the library is finalized and initialized again (which closes
    every session this process had: call it before opening any for the test)."""
    return new_token()  # reinitializes the library (tests/support/softhsm.py)


@pytest.fixture
def soft_token() -> SoftToken:
    """A fresh SoftHSM2 token for one test, visible to this process."""
    return hsm_token()


def token_for(t: SoftToken, pin: str | None = None) -> Token:
    return Token(HsmConfig(library=LIBRARY, token_label=t.label,
                           pin=t.pin if pin is None else pin))


@dataclass
class HsmNode:
    services: Services
    token: Token | None
    soft: SoftToken
    clock: Clock
    url: str

    def ctx(self) -> RequestContext:
        return RequestContext(interface="test", principal=Principal("root"))

    def create(self, name: str, algorithm: str, **kw: object) -> str:
        """Create an HSM-protected key; returns its id."""
        key = self.services.keys.create(self.ctx(), CreateKey(
            name=name, algorithm=algorithm, protection="hsm", **kw))  # type: ignore[arg-type]
        return key.id


def make_hsm_node(url: str, token: Token | None, soft: SoftToken, clock: Clock | None = None,
                  *, init: bool = True) -> HsmNode:
    clock = clock or Clock()
    engine = make_engine(url)
    deps = Deps(engine=engine, custody=Custody(hsm=token), clock=clock)
    services = build_services(deps, Auditor([ListSink()], clock))
    if init:
        services.system.init(PASSPHRASE)
    services.system.unseal(PASSPHRASE)
    return HsmNode(services, token, soft, clock, url)


@pytest.fixture
def hsm_node(database_url: str, soft_token: SoftToken) -> Iterator[HsmNode]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    token = token_for(soft_token)
    node = make_hsm_node(database_url, token, soft_token)
    yield node
    token.close()
    node.services.deps.engine.dispose()

