"""The use rules of domain/lifecycle.py applied by the service at the clock's now, on both
backends: crypto-periods (key, namespace), activation dates, minimum versions, and the
audited allow_compromised recovery flag."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keykeeper.audit.records import AuditRecord
from keykeeper.errors import FailedPrecondition
from keykeeper.service.keys import CreateKey
from keykeeper.store.schema import namespaces
from tests.integration.conftest import Node
from tests.usage.conftest import counter, set_key, set_version, stored_count

DAY = 86_400


def test_originator_and_recipient_periods_take_effect_at_their_instant(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))
    set_key(node, "k", originator_usage_period=10 * DAY, recipient_usage_period=20 * DAY)
    ct = svc.crypto.encrypt(ctx, "k", b"x").ciphertext
    node.clock.advance(days=10, microseconds=-1)
    svc.crypto.encrypt(ctx, "k", b"x")
    node.clock.advance(microseconds=1)
    with pytest.raises(FailedPrecondition, match="originator usage period"):
        svc.crypto.encrypt(ctx, "k", b"x")
    with pytest.raises(FailedPrecondition, match="originator usage period"):
        svc.crypto.data_key(ctx, "k")
    assert svc.crypto.decrypt(ctx, "k", ct)[0] == b"x"
    node.clock.advance(days=10)
    with pytest.raises(FailedPrecondition, match="recipient usage period"):
        svc.crypto.decrypt(ctx, "k", ct)
    svc.keys.rotate(ctx, "k")                      # a fresh version starts its own period
    assert svc.crypto.encrypt(ctx, "k", b"y").key_version == 2


def test_namespace_periods_apply_to_its_keys(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k", algorithm="HMAC_SHA256", purpose="mac"))
    with svc.deps.transaction() as conn:
        conn.execute(namespaces.update().where(namespaces.c.name == key.namespace).values(
            originator_usage_period=2 * DAY, recipient_usage_period=3 * DAY))
    node.clock.advance(seconds=2)                  # past the 1 s metadata TTL
    tag, _ = svc.crypto.mac(ctx, "k", b"m")
    node.clock.advance(days=2)
    with pytest.raises(FailedPrecondition, match="originator usage period"):
        svc.crypto.mac(ctx, "k", b"m")
    assert svc.crypto.verify_mac(ctx, "k", b"m", tag)[0]
    node.clock.advance(days=1)
    with pytest.raises(FailedPrecondition, match="recipient usage period"):
        svc.crypto.verify_mac(ctx, "k", b"m", tag)


def test_activation_and_deactivation_dates(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))
    start = node.clock() + timedelta(days=1)
    set_key(node, "k", state="pre-active", activation_date=start,
            deactivation_date=start + timedelta(days=1))
    with pytest.raises(FailedPrecondition, match="pre-active until"):
        svc.crypto.encrypt(ctx, "k", b"x")
    node.clock.now = start
    ct = svc.crypto.encrypt(ctx, "k", b"x").ciphertext
    node.clock.advance(days=1)
    with pytest.raises(FailedPrecondition, match="deactivated"):
        svc.crypto.encrypt(ctx, "k", b"x")
    assert svc.crypto.decrypt(ctx, "k", ct)[0] == b"x"


def test_minimum_versions(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))
    ct1 = svc.crypto.encrypt(ctx, "k", b"x").ciphertext
    svc.keys.rotate(ctx, "k")
    svc.keys.rotate(ctx, "k")
    with pytest.raises(FailedPrecondition, match="only the primary version"):
        svc.crypto.encrypt(ctx, "k", b"x", key_version=2)
    set_key(node, "k", min_encryption_version=2, min_decryption_version=2)
    assert svc.crypto.encrypt(ctx, "k", b"x", key_version=2).key_version == 2
    with pytest.raises(FailedPrecondition, match="min_encryption_version"):
        svc.crypto.encrypt(ctx, "k", b"x", key_version=1)
    with pytest.raises(FailedPrecondition, match="min_decryption_version"):
        svc.crypto.decrypt(ctx, "k", ct1)
    out = svc.crypto.decrypt_batch(ctx, "k", [(ct1, None)])
    assert isinstance(out[0], FailedPrecondition)


def audit_of(node: Node, operation: str) -> AuditRecord:
    records = [r for r in node.sink.records
               if isinstance(r, AuditRecord) and r.operation == operation]
    return records[-1]


def test_compromised_version_decrypts_only_with_the_flag_and_audits_it(node: Node) -> None:
    svc = node.services
    ctx = node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="k"))
    ct1 = svc.crypto.encrypt(ctx, "k", b"one").ciphertext
    svc.keys.rotate(ctx, "k")
    ct2 = svc.crypto.encrypt(ctx, "k", b"two").ciphertext
    set_version(node, "k", 1, state="compromised", compromised_at=node.clock(),
                compromise_reason="leaked")
    with pytest.raises(FailedPrecondition, match="key version 1 is compromised"):
        svc.crypto.decrypt(ctx, "k", ct1)
    ctx = node.ctx()
    assert svc.crypto.decrypt(ctx, "k", ct2, allow_compromised=True)[0] == b"two"
    assert ctx.allow_compromised is None            # not needed: not recorded
    ctx = node.ctx()
    assert svc.crypto.decrypt(ctx, "k", ct1, allow_compromised=True)[0] == b"one"
    assert ctx.allow_compromised is True
    svc.audit.record(ctx, "decrypt")
    svc.audit.close()
    rec = audit_of(node, "decrypt")
    assert rec.allow_compromised is True and rec.key_version == 1 and rec.key_id == key.id
    out = svc.crypto.decrypt_batch(node.ctx(), "k", [(ct1, None), (ct1, None), (ct2, None)],
                                   allow_compromised=[False, True, False])
    assert isinstance(out[0], FailedPrecondition)
    assert out[1] == (b"one", 1) and out[2] == (b"two", 2)
    # Recovery: rewrap moves the data to the fresh primary, counting one encrypt.
    ctx = node.ctx()
    moved = svc.crypto.rewrap(ctx, "k", ct1, allow_compromised=True)
    assert moved.key_version == 2 and ctx.allow_compromised is True
    with pytest.raises(FailedPrecondition, match="compromised"):
        svc.crypto.rewrap(node.ctx(), "k", ct1)
    counter(node).return_all()
    assert stored_count(node, key.id, 2) == 2


def test_compromised_key_verifies_and_decapsulates_only_with_the_flag(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="s", algorithm="ED25519", purpose="sign"))
    svc.keys.create(ctx, CreateKey(name="m", algorithm="HMAC_SHA256", purpose="mac"))
    svc.keys.create(ctx, CreateKey(name="kem", algorithm="ML_KEM_768", purpose="kem"))
    sig, _ = svc.crypto.sign(ctx, "s", b"m", prehashed=False, signature_format=None)
    tag, _ = svc.crypto.mac(ctx, "m", b"m")
    secret, kct, _ = svc.crypto.encapsulate(ctx, "kem")
    for name in ("s", "m", "kem"):
        svc.keys.compromise(ctx, name, "stolen laptop")
    with pytest.raises(FailedPrecondition, match="the key is compromised"):
        svc.crypto.verify(ctx, "s", b"m", sig, prehashed=False, signature_format=None)
    with pytest.raises(FailedPrecondition, match="the key is compromised"):
        svc.crypto.verify_mac(ctx, "m", b"m", tag)
    with pytest.raises(FailedPrecondition, match="the key is compromised"):
        svc.crypto.decapsulate(ctx, "kem", kct)
    with pytest.raises(FailedPrecondition, match="compromised"):
        svc.crypto.sign(ctx, "s", b"m", prehashed=False, signature_format=None)
    c = node.ctx()
    assert svc.crypto.verify(c, "s", b"m", sig, prehashed=False, signature_format=None,
                             allow_compromised=True)[0]
    assert c.allow_compromised is True
    assert svc.crypto.verify_mac(node.ctx(), "m", b"m", tag, allow_compromised=True)[0]
    assert svc.crypto.decapsulate(node.ctx(), "kem", kct, allow_compromised=True)[0] == secret
