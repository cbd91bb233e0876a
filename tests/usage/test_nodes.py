"""Two in-process nodes over one PostgreSQL schema hammering one key from threads: the
hard limit holds cluster-wide, exactly, and the stored count is exact once both stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from keykeeper.errors import FailedPrecondition
from keykeeper.service.keys import CreateKey
from tests.integration.conftest import PASSPHRASE, Node, make_node
from tests.usage.conftest import set_key, stored_count

THREADS_PER_NODE = 4


def hammer(nodes: list[Node], ref: str, per_thread: int | None) -> tuple[int, int]:
    """Encrypt from THREADS_PER_NODE threads per node, each until refused (or
    ``per_thread`` times); (successes, refusals)."""
    lock = threading.Lock()
    totals = [0, 0]
    errors: list[BaseException] = []

    def work(n: Node) -> None:
        done = refused = 0
        ctx = n.ctx()
        try:
            while per_thread is None or done < per_thread:
                try:
                    n.services.crypto.encrypt(ctx, ref, b"x")
                    done += 1
                except FailedPrecondition as exc:
                    assert "usage limit" in exc.detail
                    refused += 1
                    break
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        with lock:
            totals[0] += done
            totals[1] += refused

    threads = [threading.Thread(target=work, args=(n,)) for n in nodes
               for _ in range(THREADS_PER_NODE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return totals[0], totals[1]


@pytest.fixture
def two_nodes(node: Node, database_url: str, backend: str) -> Iterator[list[Node]]:
    if backend != "postgresql":
        pytest.skip("several nodes share a store only over PostgreSQL")
    other = make_node(database_url, node.clock)
    other.services.system.unseal(PASSPHRASE)
    nodes = [node, other]
    for n in nodes:
        n.services.start_background()
    yield nodes
    for n in nodes:
        n.services.stop_background()
    other.services.deps.engine.dispose()


@pytest.mark.parametrize("limit", [1, 300, 5000])
def test_the_limit_holds_exactly_across_two_nodes(two_nodes: list[Node], limit: int) -> None:
    a, b = two_nodes
    key = a.services.keys.create(a.ctx(), CreateKey(name="hot"))
    set_key(a, "hot", usage_limit=limit)
    b.services.lookup.forget(key)
    successes, refusals = hammer(two_nodes, "hot", None)
    assert successes == limit
    assert refusals == 2 * THREADS_PER_NODE
    assert stored_count(a, key.id) == limit
    for n in two_nodes:
        n.services.stop_background()
    assert stored_count(a, key.id) == limit


def test_unlimited_counts_are_exact_after_both_stop(two_nodes: list[Node]) -> None:
    a, _ = two_nodes
    key = a.services.keys.create(a.ctx(), CreateKey(name="hot", algorithm="HMAC_SHA256",
                                                    purpose="mac"))
    a.services.keys.create(a.ctx(), CreateKey(name="enc"))
    successes, _ = hammer(two_nodes, "enc", 700)
    assert successes == 2 * THREADS_PER_NODE * 700
    enc = a.services.keys.get(a.ctx(), "enc")
    assert stored_count(a, enc.id) >= successes      # blocks held: high, never low
    for n in two_nodes:
        n.services.crypto.mac(n.ctx(), "hot", b"m")
    for n in two_nodes:
        n.services.stop_background()
    assert stored_count(a, enc.id) == successes
    assert stored_count(a, key.id) == 2
