"""Dual control over KMIP: a gated operation answers Permission_Denied and files nothing,
since a KMIP request cannot wait for approvals (service/approvals.py gate)."""

from __future__ import annotations

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
from tests.kmip.objects_support import alg, enum, length, mask, template, text, uid_of


def _one(server: KmipServer, operation: int, payload: list[Item]) -> BatchResult:
    answer = parse_response(server.call(request_message([batch_item(operation, payload)],
                                                        version=(2, 1))))
    assert len(answer.items) == 1
    return answer.items[0]


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
    A, U = CryptographicAlgorithm, CryptographicUsageMask
    created = _one(kmip_server, Operation.CREATE, [
        enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
        template((2, 1), Cryptographic_Algorithm=alg(A.AES), Cryptographic_Length=length(256),
                 Cryptographic_Usage_Mask=mask(int(U.ENCRYPT | U.DECRYPT)))])
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
