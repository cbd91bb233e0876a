"""Usage counters (service/usage.py) on in-process nodes over both backends: every protect
operation counts, exactly, across restarts; the hard limit; the soft threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.keys import CreateKey
from keykeeper.service.operations import Crypto
from keykeeper.service.usage import USAGE_EVENT, UsageCounter
from tests.integration.conftest import PASSPHRASE, Node, make_node
from tests.usage.conftest import counter, set_key, stored_count


@dataclass
class Item:
    plaintext: bytes
    context: dict[str, str] | None = None
    key_version: int | None = None


def test_every_protect_operation_counts_and_process_does_not(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    cts = [svc.crypto.encrypt(ctx, "k", b"x").ciphertext for _ in range(3)]
    svc.crypto.data_key(ctx, "k")
    svc.crypto.rewrap(ctx, "k", cts[0])                     # its encrypt counts
    svc.crypto.encrypt_batch(ctx, "k", [Item(b"a"), Item(b"b"), Item(b"c", {"t": "1"})])
    for ct in cts:
        svc.crypto.decrypt(ctx, "k", ct)
    svc.crypto.decrypt_batch(ctx, "k", [(cts[0], None), (cts[1], None)])
    assert stored_count(node, key.id) >= 8                  # reserved: never below done
    assert stored_count(node, key.id) - counter(node).held(key.id, 1) == 8
    counter(node).return_all()
    assert stored_count(node, key.id) == 8


@pytest.mark.parametrize("algorithm,purpose", [("ECDSA_P256_SHA256", "sign"),
                                               ("HMAC_SHA256", "mac"),
                                               ("ML_KEM_768", "kem")])
def test_signatures_macs_and_encapsulations_count(node: Node, algorithm: str,
                                                  purpose: str) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k", algorithm=algorithm, purpose=purpose))
    for _ in range(5):
        if purpose == "sign":
            sig, _ = svc.crypto.sign(ctx, "k", b"m", prehashed=False, signature_format=None)
            assert svc.crypto.verify(ctx, "k", b"m", sig, prehashed=False,
                                     signature_format=None)[0]
        elif purpose == "mac":
            tag, _ = svc.crypto.mac(ctx, "k", b"m")
            assert svc.crypto.verify_mac(ctx, "k", b"m", tag)[0]
        else:
            secret, ct, _ = svc.crypto.encapsulate(ctx, "k")
            assert svc.crypto.decapsulate(ctx, "k", ct)[0] == secret
    counter(node).return_all()
    assert stored_count(node, key.id) == 5


def test_refused_operations_give_their_unit_back(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="rsa", algorithm="RSA_OAEP_3072_SHA256"))
    with pytest.raises(InvalidArgument):
        svc.crypto.encrypt(ctx, "rsa", b"x" * 1000)      # over RSA-OAEP's size
    out = svc.crypto.encrypt_batch(ctx, "rsa", [Item(b"ok"), Item(b"x" * 1000)])
    assert isinstance(out[1], Exception) and not isinstance(out[0], Exception)
    counter(node).return_all()
    assert stored_count(node, key.id) == 1


def test_hard_limit_is_exact_and_refuses_the_rest(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    set_key(node, "k", usage_limit=7, usage_rotate_fraction=1.0)
    for _ in range(5):
        svc.crypto.encrypt(ctx, "k", b"x")
    out = svc.crypto.encrypt_batch(ctx, "k", [Item(b"a"), Item(b"b"), Item(b"c")])
    assert [isinstance(r, Exception) for r in out] == [False, False, True]
    assert isinstance(out[2], FailedPrecondition)
    assert out[2].detail == ("key version 1 reached its usage limit of 7 protect operations "
                             "(NIST SP 800-38D §8.3); rotate the key")
    for op in (lambda: svc.crypto.encrypt(ctx, "k", b"x"), lambda: svc.crypto.data_key(ctx, "k")):
        with pytest.raises(FailedPrecondition, match="usage limit of 7"):
            op()
    assert stored_count(node, key.id) == 7
    counter(node).return_all()
    assert stored_count(node, key.id) == 7
    svc.keys.rotate(ctx, "k")                              # a fresh version, a fresh count
    assert svc.crypto.encrypt(ctx, "k", b"x").key_version == 2


def test_a_restarted_node_continues_the_count(node: Node, database_url: str) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    for _ in range(10):
        svc.crypto.encrypt(ctx, "k", b"x")
    svc.stop_background()
    assert stored_count(node, key.id) == 10
    again = make_node(database_url, node.clock)
    again.services.system.unseal(PASSPHRASE)
    again.services.start_background()
    try:
        for _ in range(5):
            again.services.crypto.encrypt(again.ctx(), "k", b"x")
        set_key(again, "k", usage_limit=16)
        again.services.crypto.encrypt(again.ctx(), "k", b"x")
        with pytest.raises(FailedPrecondition, match="usage limit of 16"):
            again.services.crypto.encrypt(again.ctx(), "k", b"x")
    finally:
        again.services.stop_background()
        again.services.deps.engine.dispose()
    assert stored_count(node, key.id) == 16


def test_a_crash_errs_high_never_low(node: Node, database_url: str) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    for _ in range(100):
        svc.crypto.encrypt(ctx, "k", b"x")
    # No stop(): the node "dies" holding a block; its units stay counted.
    held = stored_count(node, key.id)
    assert 100 <= held <= 100 + 128


def test_idle_versions_return_their_reservation(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    ticks = [0.0]
    usage = UsageCounter(svc.deps, svc.lookup, monotonic=lambda: ticks[0])
    crypto = Crypto(svc.lookup, svc.authz, svc.limits, clock=svc.deps.clock, usage=usage)
    for _ in range(20):
        crypto.encrypt(ctx, "k", b"x")
    assert stored_count(node, key.id) == 31               # blocks 1+2+4+8+16 reserved
    assert usage.return_idle() == 0                        # used since the last sweep
    ticks[0] = 0.9
    assert usage.return_idle() == 0                        # not idle for 1 s yet
    ticks[0] = 1.0
    assert usage.return_idle() == 11
    assert stored_count(node, key.id) == 20
    crypto.encrypt(ctx, "k", b"x")                         # the block starts at 1 again
    assert stored_count(node, key.id) == 21


def test_soft_threshold_starts_a_rotation_once(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k", rotation_period="90d"))
    set_key(node, "k", usage_limit=10, usage_rotate_fraction=0.5)
    for _ in range(4):
        svc.crypto.encrypt(ctx, "k", b"x")
    before = svc.keys.get(ctx, "k")
    assert before.rotation_reason is None
    assert before.next_rotation_time is not None and before.next_rotation_time > node.clock()
    node.clock.advance(days=3)
    svc.crypto.encrypt(ctx, "k", b"x")                     # the 5th: the threshold
    assert 5 <= stored_count(node, key.id) <= 10
    after = svc.keys.get(ctx, "k")
    assert after.rotation_reason == "usage"
    assert after.next_rotation_time == node.clock()
    for _ in range(5):
        svc.crypto.encrypt(ctx, "k", b"x")
    counter(node).return_all()
    svc.crypto.encrypt_batch(ctx, "k", [Item(b"x")])        # refused item: at the limit
    with svc.deps.reading() as conn:
        events = [e for e in svc.deps.keys.events(conn, key.id) if e["action"] == USAGE_EVENT]
    assert len(events) == 1 and events[0]["version"] == 1
    assert "5 of 10" in events[0]["reason"]


def test_threshold_keeps_an_earlier_rotation_time(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))
    earlier = node.clock() - timedelta(hours=1)
    set_key(node, "k", usage_limit=2, usage_rotate_fraction=0.5, next_rotation_time=earlier)
    svc.crypto.encrypt(ctx, "k", b"x")
    after = svc.keys.get(ctx, "k")
    assert after.rotation_reason == "usage" and after.next_rotation_time == earlier


def test_a_reservation_is_a_number_whatever_its_size(node: Node) -> None:
    """Reserving up to the AES-GCM limit (2^32) holds a count, not one entry per unit: it
    is instant and takes no memory (a list of 2^32 would be ~35 GB)."""
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    usage = counter(node)
    assert usage.reserve(key, 1, 3_000_000_000) == 3_000_000_000
    usage.refund(key.id, 1, 2_999_999_999)
    assert usage.held(key.id, 1) == 2_999_999_999
    usage.return_all()
    assert stored_count(node, key.id) == 1
