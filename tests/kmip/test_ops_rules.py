"""keykeeper's rules as a KMIP client meets them: dual control (a gated operation answers
Permission_Denied and files nothing, since a KMIP request cannot wait for approvals), and
KMIP Names across Re-Key."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from keykeeper.kmip.messages import BatchResult, batch_item, parse_response, request_message
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    ObjectType,
    Operation,
    ResultReason,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer
from tests.kmip.objects_support import (
    alg,
    enum,
    length,
    mask,
    name_value,
    template,
    text,
    uid_of,
)


def _one(server: KmipServer, operation: int, payload: list[Item]) -> BatchResult:
    answer = parse_response(server.call(request_message([batch_item(operation, payload)],
                                                        version=(2, 1))))
    assert len(answer.items) == 1
    return answer.items[0]


def _create_aes(server: KmipServer, **extra: Item) -> BatchResult:
    """KMIP 2.1 Create of an AES-256 encrypt key with ``extra`` attributes."""
    A, U = CryptographicAlgorithm, CryptographicUsageMask
    return _one(server, Operation.CREATE, [
        enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
        template((2, 1), Cryptographic_Algorithm=alg(A.AES), Cryptographic_Length=length(256),
                 Cryptographic_Usage_Mask=mask(int(U.ENCRYPT | U.DECRYPT)), **extra)])


@pytest.fixture()
def destroy_under_dual_control(kmip_server: KmipServer) -> Iterator[None]:
    r = kmip_server.rest.get("/v1/policies/approval")
    assert r.status_code == 200, r.text
    original = r.json()
    rule = {"operations": ["key.destroy_version"], "required": 1,
            "approver_roles": ["key-custodian"], "expiry_seconds": 3600}
    r = kmip_server.rest.put("/v1/policies/approval", json={"rules": [rule]})
    assert r.status_code == 200, r.text
    yield
    r = kmip_server.rest.put("/v1/policies/approval", json=original)
    assert r.status_code == 200, r.text


def _pending(kmip_server: KmipServer) -> list[dict[str, object]]:
    r = kmip_server.rest.get("/v1/approvals", params={"state": "pending"})
    assert r.status_code == 200, r.text
    body = r.json()
    return [a for a in body.get("approvals", body.get("items", []))
            if a.get("operation") == "key.destroy_version"]


def test_gated_destroy_is_permission_denied_and_files_nothing(
        kmip_server: KmipServer, destroy_under_dual_control: None) -> None:
    created = _create_aes(kmip_server)
    assert created.ok and created.payload is not None, (created.reason, created.message)
    uid = uid_of(created.payload)
    before = len(_pending(kmip_server))
    destroyed = _one(kmip_server, Operation.DESTROY, [text(Tag.UNIQUE_IDENTIFIER, uid)])
    assert not destroyed.ok
    assert destroyed.reason == ResultReason.PERMISSION_DENIED, destroyed.message
    assert destroyed.message is not None and "dual control" in destroyed.message
    assert len(_pending(kmip_server)) == before  # no request nobody could finish
    still = _one(kmip_server, Operation.GET_ATTRIBUTES, [text(Tag.UNIQUE_IDENTIFIER, uid)])
    assert still.ok  # the object is still there


def test_rekey_moves_a_kmip_name_that_is_not_the_keykeeper_name(
        kmip_server: KmipServer) -> None:
    """A KMIP Name that cannot be keykeeper's name (a space) is stored on the object; Re-Key
    moves it to the replacement, so Locate by that Name finds the object in use."""
    kmip_name = f"tde key {secrets.token_hex(4)}"
    created = _create_aes(kmip_server, Name=name_value(kmip_name))
    assert created.ok and created.payload is not None, (created.reason, created.message)
    old = uid_of(created.payload)
    activated = _one(kmip_server, Operation.ACTIVATE, [text(Tag.UNIQUE_IDENTIFIER, old)])
    assert activated.ok, activated.message
    rekeyed = _one(kmip_server, Operation.RE_KEY, [text(Tag.UNIQUE_IDENTIFIER, old)])
    assert rekeyed.ok and rekeyed.payload is not None, (rekeyed.reason, rekeyed.message)
    new = uid_of(rekeyed.payload)
    assert new != old
    located = _one(kmip_server, Operation.LOCATE, [
        template((2, 1), Name=name_value(kmip_name))])
    assert located.ok and located.payload is not None, (located.reason, located.message)
    found = [c.value for c in located.payload.find_all(Tag.UNIQUE_IDENTIFIER)]
    assert found == [new]


def test_rest_label_changes_keep_kmip_attributes(kmip_server: KmipServer) -> None:
    """kmip.* labels hold KMIP attributes: a REST label update keeps them, and REST may
    neither write them at create nor at update."""
    kmip_name = f"tde key {secrets.token_hex(4)}"
    created = _create_aes(kmip_server, Name=name_value(kmip_name))
    assert created.ok and created.payload is not None, (created.reason, created.message)
    uid = uid_of(created.payload)
    key_id = uid.split("/")[0]
    r = kmip_server.rest.patch(f"/v1/keys/{key_id}", json={"labels": {"team": "db"}})
    assert r.status_code == 200, r.text
    labels = r.json()["labels"]
    assert labels.get("team") == "db" and any(k.startswith("kmip.") for k in labels)
    located = _one(kmip_server, Operation.LOCATE, [
        template((2, 1), Name=name_value(kmip_name))])
    assert located.ok and located.payload is not None
    assert [c.value for c in located.payload.find_all(Tag.UNIQUE_IDENTIFIER)] == [uid]
    r = kmip_server.rest.patch(f"/v1/keys/{key_id}", json={"labels": {"kmip.1.State.0": "x"}})
    assert r.status_code == 400 and "kmip" in r.json()["detail"], r.text
    r = kmip_server.rest.post("/v1/keys", json={
        "name": "rest-" + secrets.token_hex(4), "namespace": kmip_server.namespace,
        "purpose": "encrypt", "labels": {"kmip.1.Name.0": "forged"}})
    assert r.status_code == 400 and "kmip" in r.json()["detail"], r.text
