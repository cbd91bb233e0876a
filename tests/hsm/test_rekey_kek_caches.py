"""A root rekey rewraps every namespace KEK: wrapped KEK bytes cached before it (KeyLookup's
KEK and namespace-row caches) must not outlive it, on the node that ran it and on another
node of the cluster, once custody has dropped its unwrapped KEKs (seal, then unseal)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keykeeper.custody.root import is_hsm_blob
from keykeeper.service import system as system_module
from keykeeper.service.key_args import CreateKey
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from tests.hsm.conftest import PASSPHRASE, HsmNode, make_hsm_node, token_for
from tests.support.softhsm import SoftToken

NEW_PASSPHRASE = "the passphrase after the rekey"


@pytest.fixture
def two_nodes(database_url: str, soft_token: SoftToken) -> Iterator[tuple[HsmNode, HsmNode]]:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    tokens = [token_for(soft_token), token_for(soft_token)]
    first = make_hsm_node(database_url, tokens[0], soft_token)
    second = make_hsm_node(database_url, tokens[1], soft_token, first.clock, init=False)
    yield first, second
    for n, t in zip((first, second), tokens, strict=True):
        t.close()
        n.services.deps.engine.dispose()


def _rekey(node: HsmNode, seal: str, **material: str) -> None:
    kw = {"passphrase": NEW_PASSPHRASE} if seal == "passphrase" else {}
    status = node.services.system.rekey.start(seal, **kw)
    assert node.services.system.rekey.update(status.nonce, **material).complete


def _default_kek(node: HsmNode) -> bytes:
    with node.services.deps.reading() as conn:
        row = node.services.deps.system.get_namespace(conn, "default")
    assert row is not None
    return row.wrapped_kek


@pytest.mark.parametrize("follows", [True, False], ids=["follows", "sealed-first"])
def test_keys_work_after_a_rekey_off_the_hsm_root_then_seal_and_unseal(
        two_nodes: tuple[HsmNode, HsmNode], monkeypatch: pytest.MonkeyPatch,
        follows: bool) -> None:
    """pkcs11 -> passphrase, then seal and unseal: custody no longer holds the HSM root, so
    a KEK wrapped by it (cached before the rekey) would be Internal on every load. The
    second node either follows the new root first or is sealed before it notices."""
    first, second = two_nodes
    monkeypatch.setattr(system_module, "SEAL_CHECK_SECONDS", 0.0)  # nodes follow at once
    first.services.namespaces.create(first.ctx(), "other")
    _rekey(first, "pkcs11", passphrase=PASSPHRASE)          # KEKs now wrapped in the token
    assert not second.services.system.sealed()               # follows the HSM root
    assert is_hsm_blob(_default_kek(first))
    ciphertexts = {}
    for n, node in enumerate((first, second)):
        # Each node caches the namespace row and its HSM-wrapped KEK.
        name = f"old-{n}"
        node.services.keys.create(node.ctx(), CreateKey(name=name, algorithm="AES_256_GCM"))
        node.services.keys.create(node.ctx(), CreateKey(name=name, namespace="other",
                                                        algorithm="AES_256_GCM"))
        for other in (first, second):  # both nodes load the version: both cache the KEK
            ciphertexts[(name, other is first)] = other.services.crypto.encrypt(
                other.ctx(), name, b"before the rekey").ciphertext

    _rekey(first, "passphrase")                              # back to the root secret
    assert not is_hsm_blob(_default_kek(first))
    if follows:
        assert not second.services.system.sealed()           # follows the software root
    first.services.system.seal()
    assert second.services.system.sealed()                   # sealed by the generation
    for node in (first, second):
        assert node.services.deps.custody.sealed
        node.services.system.unseal(NEW_PASSPHRASE)

    for n, node in enumerate((first, second)):
        ctx = node.ctx()
        # A create wraps under the KEK read now (KeyLookup's namespace-row cache, 1 s), ...
        node.services.keys.create(ctx, CreateKey(name=f"new-{n}", namespace="other",
                                                 algorithm="AES_256_GCM"))
        sealed = node.services.crypto.encrypt(ctx, f"other:new-{n}", b"after").ciphertext
        assert node.services.crypto.decrypt(ctx, f"other:new-{n}", sealed)[0] == b"after"
        # ... old versions load again (KeyLookup's wrapped KEK cache), ...
        for (name, _), ciphertext in ciphertexts.items():
            assert node.services.crypto.decrypt(ctx, name, ciphertext)[0] == b"before the rekey"
        rotated = node.services.keys.rotate(ctx, f"old-{n}")
        out = node.services.crypto.encrypt(ctx, f"old-{n}", b"rotated")
        assert out.key_version == rotated.primary_version == 2
        assert node.services.crypto.decrypt(ctx, f"old-{n}", out.ciphertext)[0] == b"rotated"
        # ... and a create in their namespace works too.
        node.services.keys.create(ctx, CreateKey(name=f"new-{n}", algorithm="AES_256_GCM"))
        sealed = node.services.crypto.encrypt(ctx, f"new-{n}", b"after").ciphertext
        assert node.services.crypto.decrypt(ctx, f"new-{n}", sealed)[0] == b"after"
