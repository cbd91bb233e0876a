"""HSM-protected keys through their life: creation refusals, what is stored (never the
material), rotation (manual and scheduled), crypto-erasure that destroys the token
object, and no token object left behind by a creation that fails."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from keykeeper.errors import (
    AlreadyExists,
    DecryptionFailed,
    FailedPrecondition,
    InvalidArgument,
)
from keykeeper.service.key_args import CreateKey
from keykeeper.service.rotation import Rotator
from keykeeper.store.schema import key_versions
from tests.hsm.conftest import HsmNode, make_hsm_node
from tests.hsm.probe import objects


def _rows(node: HsmNode, key_id: str) -> list[dict[str, object]]:
    with node.services.deps.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(key_versions).where(key_versions.c.key_id == key_id)
            .order_by(key_versions.c.version))]


def _by_id(node: HsmNode) -> dict[str, dict[str, object]]:
    return {o["id"]: o for o in objects(node.soft)}


@pytest.mark.parametrize("algorithm", ["ED25519", "CHACHA20_POLY1305", "ECDSA_P521_SHA512",
                                       "RSA_PKCS1_3072_SHA256", "ML_DSA_65"])
def test_other_algorithms_are_refused_naming_the_supported_set(hsm_node: HsmNode,
                                                               algorithm: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        hsm_node.create("k", algorithm)
    assert algorithm in err.value.detail and "AES_256_GCM" in err.value.detail
    assert "ECDSA_P256_SHA256" in err.value.detail and "HMAC_SHA256" in err.value.detail


def test_protection_values_and_exportable(hsm_node: HsmNode) -> None:
    with pytest.raises(InvalidArgument, match="'software' or 'hsm'"):
        CreateKey(name="k", protection="tpm")
    with pytest.raises(InvalidArgument, match="never exportable"):
        CreateKey(name="k", protection="hsm", exportable=True)


def test_no_hsm_configured_is_a_failed_precondition(database_url: str, hsm_node: HsmNode) -> None:
    plain = make_hsm_node(database_url, None, hsm_node.soft, init=False)
    with pytest.raises(FailedPrecondition, match=r"needs a PKCS#11 token and none is\s+configured"):
        plain.services.keys.create(plain.ctx(), CreateKey(name="k", protection="hsm"))
    # and a key made in the HSM elsewhere is never served in software here
    hsm_node.create("elsewhere", "AES_256_GCM")
    with pytest.raises(FailedPrecondition, match="HSM-protected and no HSM"):
        plain.services.crypto.encrypt(plain.ctx(), "elsewhere", b"x")
    plain.services.deps.engine.dispose()


def test_material_is_made_in_the_token_and_never_stored(hsm_node: HsmNode) -> None:
    ids = {alg: hsm_node.create(alg.lower().replace("_", "-"), alg)
           for alg in ("AES_256_GCM", "ECDSA_P256_SHA256", "RSA_PSS_3072_SHA256",
                       "HMAC_SHA256")}
    on_token = _by_id(hsm_node)
    for alg, key_id in ids.items():
        key = hsm_node.services.keys.get(hsm_node.ctx(), key_id)
        assert key.protection == "hsm"
        (row,) = _rows(hsm_node, key_id)
        assert row["wrapped_material"] is None
        cka_id = str(row["hsm_key_id"])
        assert len(cka_id) == 32 and int(cka_id, 16) >= 0
        assert (row["public_key"] is None) == (alg in ("AES_256_GCM", "HMAC_SHA256"))
        obj = on_token[cka_id]
        assert obj["label"] == f"keykeeper/{key_id}/v1" and obj["token"] is True
        assert obj["EXTRACTABLE"] is False and obj["NEVER_EXTRACTABLE"] is True
        assert obj["SENSITIVE"] is True and obj["LOCAL"] is True and obj["PRIVATE"] is True
        assert obj["value_readable"] is False
    # only the private or secret objects stay: no public key object is left on the token
    assert len(on_token) == len(ids)


def test_a_scan_of_the_database_finds_no_material(hsm_node: HsmNode) -> None:
    hsm_node.create("scan", "AES_256_GCM")
    hsm_node.services.keys.rotate(hsm_node.ctx(), "scan")
    with hsm_node.services.deps.reading() as conn:
        rows = list(conn.execute(select(key_versions)))
    hsm_rows = [r for r in rows if r.hsm_key_id is not None]
    assert len(hsm_rows) == 2
    assert all(r.wrapped_material is None and r.public_key is None for r in hsm_rows)


def test_manual_rotation_makes_a_new_hsm_key(hsm_node: HsmNode) -> None:
    key_id = hsm_node.create("rot", "ECDSA_P256_SHA256")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    old_sig, _ = crypto.sign(ctx, "rot", b"m", prehashed=False, signature_format=None)
    key = hsm_node.services.keys.rotate(ctx, "rot")
    assert key.primary_version == 2
    rows = _rows(hsm_node, key_id)
    assert rows[0]["hsm_key_id"] != rows[1]["hsm_key_id"] and rows[1]["wrapped_material"] is None
    assert rows[0]["public_key"] != rows[1]["public_key"]
    assert _by_id(hsm_node)[str(rows[1]["hsm_key_id"])]["label"] == f"keykeeper/{key_id}/v2"
    new_sig, version = crypto.sign(ctx, "rot", b"m", prehashed=False, signature_format=None)
    assert version == 2
    assert crypto.verify(ctx, "rot", b"m", old_sig, prehashed=False, signature_format=None) \
        == (True, 1)
    assert crypto.verify(ctx, "rot", b"m", new_sig, prehashed=False, signature_format=None) \
        == (True, 2)


def test_scheduled_rotation_makes_a_new_hsm_key(hsm_node: HsmNode) -> None:
    key_id = hsm_node.create("sched", "AES_256_GCM", rotation_period="1d")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    before = crypto.encrypt(ctx, "sched", b"v1 data")
    hsm_node.clock.advance(days=1, seconds=1)
    rotator = Rotator(hsm_node.services.deps, hsm_node.services.lookup)
    assert rotator.rotate_one(key_id, hsm_node.clock()) is True
    assert rotator.rotate_one(key_id, hsm_node.clock()) is False   # not due again: no key made
    rows = _rows(hsm_node, key_id)
    assert [r["version"] for r in rows] == [1, 2]
    assert len({str(r["hsm_key_id"]) for r in rows}) == 2
    assert len(objects(hsm_node.soft)) == 2
    after = crypto.encrypt(ctx, "sched", b"v2 data")
    assert after.key_version == 2
    assert crypto.decrypt(ctx, "sched", before.ciphertext) == (b"v1 data", 1)


def test_destroying_a_version_destroys_the_token_object(hsm_node: HsmNode) -> None:
    key_id = hsm_node.create("erase", "AES_256_GCM")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    old = crypto.encrypt(ctx, "erase", b"to be erased")
    hsm_node.services.keys.rotate(ctx, "erase")
    first = str(_rows(hsm_node, key_id)[0]["hsm_key_id"])
    assert first in _by_id(hsm_node)
    hsm_node.services.keys.destroy_version(ctx, "erase", 1)
    assert first not in _by_id(hsm_node)                          # C_DestroyObject
    row = _rows(hsm_node, key_id)[0]
    assert row["state"] == "destroyed" and row["hsm_key_id"] is None
    assert row["wrapped_material"] is None
    with pytest.raises((FailedPrecondition, DecryptionFailed)):
        crypto.decrypt(ctx, "erase", old.ciphertext)
    (receipt,) = hsm_node.services.destruction.receipts(ctx, "erase")
    assert receipt["versions"][0]["wrapped_sha256"] == hashlib.sha256(
        bytes.fromhex(first)).hexdigest()
    assert crypto.decrypt(ctx, "erase", crypto.encrypt(ctx, "erase", b"v2").ciphertext)[0] \
        == b"v2"


def test_scheduled_destruction_destroys_every_object(hsm_node: HsmNode) -> None:
    key_id = hsm_node.create("doomed", "HMAC_SHA256")
    ctx = hsm_node.services.keys
    hsm_node.services.keys.rotate(hsm_node.ctx(), "doomed")
    ids = {str(r["hsm_key_id"]) for r in _rows(hsm_node, key_id)}
    assert ids <= set(_by_id(hsm_node))
    ctx.schedule_destruction(hsm_node.ctx(), "doomed", 7)
    hsm_node.clock.advance(days=7, seconds=1)
    assert hsm_node.services.destruction.destroy_due(hsm_node.clock()) == (1, 0)
    assert not ids & set(_by_id(hsm_node))
    assert all(r["hsm_key_id"] is None for r in _rows(hsm_node, key_id))


def test_a_failed_creation_leaves_no_object_on_the_token(hsm_node: HsmNode) -> None:
    hsm_node.create("taken", "ECDSA_P256_SHA256")
    assert len(objects(hsm_node.soft)) == 1
    with pytest.raises(AlreadyExists):
        hsm_node.create("taken", "ECDSA_P256_SHA256")
    assert len(objects(hsm_node.soft)) == 1


def test_an_object_gone_from_the_token_fails_closed(hsm_node: HsmNode) -> None:
    """Deleted behind keykeeper's back: 409, never a software key."""
    from tests.hsm.probe import raw_session

    key_id = hsm_node.create("gone", "AES_256_GCM")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    crypto.encrypt(ctx, "gone", b"x")                           # handle cached, object found
    cka_id = bytes.fromhex(str(_rows(hsm_node, key_id)[0]["hsm_key_id"]))
    with raw_session(hsm_node.soft) as s:
        s.get_key(id=cka_id).destroy()
    with pytest.raises(FailedPrecondition, match="not on the token"):
        crypto.encrypt(ctx, "gone", b"x")


def test_deleting_a_namespace_destroys_its_token_objects(hsm_node: HsmNode) -> None:
    services, ctx = hsm_node.services, hsm_node.ctx()
    services.namespaces.create(ctx, "hsm-ns")
    key_id = hsm_node.create("in-ns", "AES_256_GCM", namespace="hsm-ns")
    services.keys.rotate(ctx, "hsm-ns:in-ns")
    ids = {str(r["hsm_key_id"]) for r in _rows(hsm_node, key_id)}
    assert len(ids) == 2 and ids <= set(_by_id(hsm_node))
    erasure = services.namespaces.delete(ctx, "hsm-ns")
    assert erasure.versions_destroyed == 2
    assert not ids & set(_by_id(hsm_node))                        # C_DestroyObject each
    assert all(r["hsm_key_id"] is None and r["state"] == "destroyed"
               for r in _rows(hsm_node, key_id))
