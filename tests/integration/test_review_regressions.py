"""Regressions for a security review: each case was confirmed broken before its fix."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from keykeeper.custody.keyring import Custody
from keykeeper.errors import AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable
from keykeeper.service.audit import Auditor
from keykeeper.service.auth import TokenAuthenticator
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.keys import CreateKey
from keykeeper.store.engine import make_engine
from tests.integration.conftest import PASSPHRASE, Node, make_node


def test_stale_cancel_cannot_revive_a_compromised_key(node: Node, database_url: str) -> None:
    other = make_node(database_url, node.clock)
    other.services.system.unseal(PASSPHRASE)
    a, b = node.services, other.services
    a.keys.create(node.ctx(), CreateKey(name="victim"))
    a.keys.schedule_destruction(node.ctx(), "victim", 7)
    b.keys.get(other.ctx(), "victim")  # B now holds metadata without compromised_at
    a.keys.compromise(node.ctx(), "victim", "leaked")
    key = b.keys.cancel_destruction(other.ctx(), "victim")
    assert key.state == "compromised"
    with pytest.raises(FailedPrecondition):
        b.keys.enable(other.ctx(), "victim")
    other.services.deps.engine.dispose()


def test_init_after_init_costs_no_argon2(node: Node) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: _init_error(node), range(40)))
    assert set(results) == {"already_exists"}
    assert time.monotonic() - started < 3.0  # 40 Argon2id runs would take over 10 s


def _init_error(node: Node) -> str:
    try:
        node.services.system.init("another passphrase 123")
    except AlreadyExists as exc:
        return exc.code
    return "initialized twice"


def test_many_concurrent_lifecycle_calls_do_not_starve_the_pool(node: Node) -> None:
    svc = node.services
    names = [f"p{i}" for i in range(40)]
    for n in names:
        svc.keys.create(node.ctx(), CreateKey(name=n))
    fresh = make_node(str(svc.deps.engine.url.render_as_string(hide_password=False)), node.clock)
    fresh.services.system.unseal(PASSPHRASE)
    started = time.monotonic()
    with ThreadPoolExecutor(40) as pool:
        states = list(pool.map(lambda n: fresh.services.keys.disable(RequestContext(
            principal=node.ctx().principal), n).state, names))
    assert states == ["suspended"] * 40
    assert time.monotonic() - started < 20
    fresh.services.deps.engine.dispose()


def test_version_destroyed_under_cached_metadata_is_a_precondition(node: Node,
                                                                  database_url: str) -> None:
    other = make_node(database_url, node.clock)
    other.services.system.unseal(PASSPHRASE)
    a, b = node.services, other.services
    a.keys.create(node.ctx(), CreateKey(name="gone"))
    old = a.crypto.encrypt(node.ctx(), "gone", b"x").ciphertext
    a.keys.rotate(node.ctx(), "gone")
    b.crypto.encrypt(other.ctx(), "gone", b"y")  # B caches metadata where v1 is active
    a.keys.destroy_version(node.ctx(), "gone", 1)
    with pytest.raises(FailedPrecondition):
        b.crypto.decrypt(other.ctx(), "gone", old)
    other.services.deps.engine.dispose()


def test_nul_in_free_text_is_invalid_argument(node: Node) -> None:
    svc = node.services
    with pytest.raises(InvalidArgument):
        svc.keys.create(node.ctx(), CreateKey(name="n1", description="a\x00b"))
    with pytest.raises(InvalidArgument):
        svc.keys.create(node.ctx(), CreateKey(name="n2", labels={"k": "\x00"}))
    svc.keys.create(node.ctx(), CreateKey(name="n3"))
    with pytest.raises(InvalidArgument):
        svc.keys.compromise(node.ctx(), "n3", "bad\x00reason")


def test_store_outage_during_authentication_is_unavailable() -> None:
    deps = Deps(engine=make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"),
                custody=Custody())
    with pytest.raises(Unavailable):
        TokenAuthenticator(deps).authenticate("kk.some-token")


def test_audit_sink_failure_is_unavailable_not_internal() -> None:
    class Broken:
        def write(self, record: object) -> None:
            raise OSError(28, "No space left on device")

    auditor = Auditor([Broken()], clock=lambda: __import__("datetime").datetime.now())
    with pytest.raises(Unavailable), auditor.audited(RequestContext(), "encrypt"):
        pass
