"""A KMIP Create stores its key in one short transaction: no read-back of the new key,
no label rewrite (service/kmip_keys.py, store/keys.py ``as_inserted``); the key read
afterwards is the one the answer named, its KMIP attributes stored. SQLite and
PostgreSQL, in process."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.messages import batch_item, parse_response, request_message
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    ObjectType,
    Operation,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import Principal
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import alg, enum, length, mask, template


def test_create_writes_without_reading_back(node: Node) -> None:  # noqa: F811
    processor = Processor(node.services, KmipSettings(namespace="default",
                                                      extractable_default=True))
    peer = Peer("kmip", None, lambda: Principal("root"))
    create = batch_item(Operation.CREATE, [
        enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
        template((1, 2), Cryptographic_Algorithm=alg(CryptographicAlgorithm.AES),
                 Cryptographic_Length=length(256),
                 Cryptographic_Usage_Mask=mask(int(CryptographicUsageMask.ENCRYPT
                                                   | CryptographicUsageMask.DECRYPT)))])
    engine = node.services.deps.engine
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "audit_records" not in statement:  # the database audit sink, its own thread
            statements.append(" ".join(statement.split()))

    message = request_message([create], version=(1, 2))
    processor.process(message, peer)  # the first loads the roles and grants: not counted
    event.listen(engine, "before_cursor_execute", seen)
    try:
        answer = parse_response(processor.process(message, peer))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    item = answer.items[0]
    assert item.status == ResultStatus.SUCCESS, item.message
    assert item.payload is not None
    uid = item.payload.find(Tag.UNIQUE_IDENTIFIER)
    assert uid is not None and isinstance(uid.value, str)
    key = node.services.keys.get(node.ctx(), uid.value.split("/")[0])
    assert (key.algorithm, str(key.state), key.namespace) == ("AES_256_GCM", "pre-active",
                                                               "default")
    assert any(label.startswith("kmip.") for label in key.labels)  # its Digest, at least
    first_insert = next(i for i, s in enumerate(statements) if s.startswith("INSERT"))
    after = statements[first_insert:]
    assert not [s for s in after if s.startswith(("SELECT keys", "DELETE"))], after
    assert [s.split()[2] for s in after if s.startswith("INSERT")] == [
        "keys", "key_versions", "key_events", "key_labels"]
    assert len(statements) <= 6, statements
