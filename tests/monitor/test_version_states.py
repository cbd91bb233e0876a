"""The ``unusable_key_use`` rule for a *version* that forbids use while its key is
active: a compromised version pinned for encryption, a ciphertext under a destroyed or
destroyed-compromised version. The refused call's audit record names the version, and the
alert is critical, as for a compromised or destroyed key."""

from __future__ import annotations

from typing import Any

import pytest

from keykeeper.errors import FailedPrecondition
from keykeeper.service.context import RequestContext
from keykeeper.service.keys import CreateKey
from keykeeper.store.alerts import AlertFilter
from tests.integration.conftest import Node


def _alerts(node: Node) -> list[Any]:
    node.services.monitoring.drain()
    rows, _ = node.services.alerts.list(node.ctx(), AlertFilter(rule="unusable_key_use"),
                                        1000, None)
    return rows


def _refused(node: Node, op: str, call: Any) -> RequestContext:
    ctx = node.ctx()
    ctx.source = "198.51.100.7"
    with pytest.raises(FailedPrecondition), node.services.audit.audited(ctx, op):
        call(ctx)
    return ctx


def test_encrypt_pinned_to_a_compromised_version(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="pinned"))
    svc.keys.rotate(ctx, "pinned")
    svc.compromise.compromise_version(ctx, "pinned", 1, "laptop stolen")
    refused = _refused(node, "encrypt",
                       lambda c: svc.crypto.encrypt(c, "pinned", b"x", key_version=1))
    assert refused.key_version == 1          # recorded although the use was refused
    [row] = _alerts(node)
    assert row.severity == "critical"
    assert row.evidence["state"] == "compromised" and row.evidence["key_version"] == 1
    assert row.evidence["state_of"] == "version"
    assert "version 1 of key" in row.summary


@pytest.mark.parametrize("compromise_first", [False, True])
def test_decrypt_under_a_destroyed_version(node: Node, compromise_first: bool) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="gone"))
    old = svc.crypto.encrypt(ctx, "gone", b"old").ciphertext
    svc.keys.rotate(ctx, "gone")
    if compromise_first:
        svc.compromise.compromise_version(ctx, "gone", 1, "leaked")
    svc.keys.destroy_version(ctx, "gone", 1)
    _refused(node, "decrypt", lambda c: svc.crypto.decrypt(c, "gone", old,
                                                            allow_compromised=True))
    [row] = _alerts(node)
    assert row.severity == "critical" and row.evidence["key_version"] == 1
    assert row.evidence["state"] == ("destroyed-compromised" if compromise_first
                                     else "destroyed")


def test_usable_version_raises_nothing(node: Node) -> None:
    """A refusal for another reason (an older, still active version pinned while only
    the primary may encrypt) is not this rule's business."""
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="fine"))
    svc.keys.rotate(ctx, "fine")
    _refused(node, "encrypt", lambda c: svc.crypto.encrypt(c, "fine", b"x", key_version=1))
    assert _alerts(node) == []
