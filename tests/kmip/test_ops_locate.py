"""Locate against a real server (tests/kmip/conftest.py): by Name (1.4 and 2.1 shapes),
by attributes, custom attributes and a date range, with Offset and Maximum Items and the
Located Items count; the ID Placeholder a single result sets; and visibility -- a
principal without access finds nothing and may not change attributes."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import keykeeper.kmip.ops  # noqa: F401  (the dispatch table first: its modules import helpers)
from keykeeper.kmip.messages import batch_item
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import CryptographicAlgorithm, ObjectType, Operation, ResultReason
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer
from tests.kmip.kmip_attr_helpers import (
    V14,
    V21,
    T,
    attrs_v21,
    enum,
    kmip_labels,
    locate,
    make_key,
    name_value,
    ok,
    one,
    principal_cert,
    ref,
    run,
    text,
    uid_item,
    v1_attr,
    vendor_attr,
)


@pytest.fixture(scope="module")
def group(kmip_server: KmipServer) -> Iterator[tuple[str, list[str]]]:
    tag = "grp-" + secrets.token_hex(4)
    uids = []
    for algorithm in ("AES_256_GCM", "AES_128_GCM", "AES_256_GCM"):
        uid, _ = make_key(kmip_server, algorithm=algorithm)
        ok(one(kmip_server, V21, Operation.ADD_ATTRIBUTE, [uid_item(uid), Item.structure(
            Tag.NEW_ATTRIBUTE, [text(Tag.OBJECT_GROUP, tag)])]))
        uids.append(uid)
        time.sleep(1.1)  # distinct Initial Dates: Locate answers newest first
    yield tag, uids


def test_locate_by_name_sets_the_placeholder(kmip_server: KmipServer) -> None:
    uid, name = make_key(kmip_server)
    assert locate(kmip_server, V21, [name_value(name)]) == ([uid], None)
    assert locate(kmip_server, V14, [v1_attr("Name", name_value(name))]) == ([uid], None)
    _, get = run(kmip_server, V21, batch_item(Operation.LOCATE, [Item.structure(
        Tag.ATTRIBUTES, [name_value(name)])]), batch_item(Operation.GET_ATTRIBUTES, [
            ref(Tag.UNIQUE_IDENTIFIER)]))
    assert ok(get).find(Tag.UNIQUE_IDENTIFIER) == uid_item(uid)
    assert locate(kmip_server, V21, [name_value(name + "-none")]) == ([], None)


def test_locate_by_attributes_offset_and_maximum(kmip_server: KmipServer,
                                                  group: tuple[str, list[str]]) -> None:
    tag, uids = group
    newest_first = list(reversed(uids))
    by_group = [text(Tag.OBJECT_GROUP, tag)]
    assert locate(kmip_server, V21, by_group) == (newest_first, None)
    assert locate(kmip_server, V21, [*by_group, Item(Tag.CRYPTOGRAPHIC_LENGTH, T.INTEGER, 128),
                                     enum(Tag.CRYPTOGRAPHIC_ALGORITHM,
                                          CryptographicAlgorithm.AES)]) == ([uids[1]], None)
    assert locate(kmip_server, V14, [v1_attr("Object Group", text(Tag.ATTRIBUTE_VALUE, tag)),
                                     v1_attr("Object Type", enum(
                                         Tag.ATTRIBUTE_VALUE, ObjectType.SYMMETRIC_KEY))]) \
        == (newest_first, None)
    paged = [Item(Tag.OFFSET_ITEMS, T.INTEGER, 1), Item(Tag.MAXIMUM_ITEMS, T.INTEGER, 1)]
    assert locate(kmip_server, V21, by_group, paged) == ([newest_first[1]], 3)
    assert locate(kmip_server, V21, [*by_group, Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, T.INTEGER,
                                                     4)]) == (newest_first, None)  # Encrypt


def test_locate_by_custom_attribute_and_date_range(kmip_server: KmipServer,
                                                   group: tuple[str, list[str]]) -> None:
    tag, uids = group
    ok(one(kmip_server, V14, Operation.ADD_ATTRIBUTE, [
        uid_item(uids[0]), v1_attr("x-shelf", Item(Tag.ATTRIBUTE_VALUE, T.INTEGER, 7))]))
    assert locate(kmip_server, V14, [v1_attr("x-shelf", Item(
        Tag.ATTRIBUTE_VALUE, T.INTEGER, 7)), v1_attr("Object Group", text(
            Tag.ATTRIBUTE_VALUE, tag))]) == ([uids[0]], None)
    assert locate(kmip_server, V21, [vendor_attr("shelf", Item(
        Tag.ATTRIBUTE_VALUE, T.INTEGER, 7))])[0] == [uids[0]]
    dates = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(uids[1]), ref(Tag.INITIAL_DATE)]))).find(Tag.INITIAL_DATE)
    assert dates is not None and isinstance(dates.value, int)
    window = [Item(Tag.INITIAL_DATE, T.DATE_TIME, dates.value),
              Item(Tag.INITIAL_DATE, T.DATE_TIME, dates.value)]
    # the others were made over 1.1 s before or after: only uids[1] is in this second
    assert locate(kmip_server, V21, [text(Tag.OBJECT_GROUP, tag), *window]) \
        == ([uids[1]], None)


def test_locate_sees_only_what_the_caller_may_see(kmip_server: KmipServer,
                                                  kmip_pki: Any, tmp_path: Path) -> None:
    name = "limited-" + secrets.token_hex(4)
    r = kmip_server.rest.post("/v1/namespaces", json={"name": name})
    assert r.status_code in (200, 201), r.text
    cert = principal_cert(kmip_server, kmip_pki, tmp_path, name, ["key.list", "key.get"], name)
    uid, key_name = make_key(kmip_server)
    assert locate(kmip_server, V21, [name_value(key_name)]) == ([uid], None)
    assert locate(kmip_server, V21, [name_value(key_name)], cert=cert) == ([], None)
    hidden = one(kmip_server, V21, Operation.GET_ATTRIBUTES, [uid_item(uid)], cert)
    assert hidden.reason == ResultReason.OBJECT_NOT_FOUND
    refused = one(kmip_server, V21, Operation.ADD_ATTRIBUTE, [uid_item(uid), Item.structure(
        Tag.NEW_ATTRIBUTE, [text(Tag.OBJECT_GROUP, "x")])], cert)
    assert refused.reason == ResultReason.OBJECT_NOT_FOUND
    assert kmip_labels(kmip_server, uid) == {}


def test_a_reader_sees_but_may_not_change(kmip_server: KmipServer, kmip_pki: Any,
                                          tmp_path: Path) -> None:
    name = "reader-" + secrets.token_hex(4)
    cert = principal_cert(kmip_server, kmip_pki, tmp_path, name, ["key.list", "key.get"],
                          kmip_server.namespace)
    uid, key_name = make_key(kmip_server)
    assert locate(kmip_server, V21, [name_value(key_name)], cert=cert) == ([uid], None)
    ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [uid_item(uid)], cert))
    for op, payload in (
            (Operation.ADD_ATTRIBUTE, [uid_item(uid), Item.structure(
                Tag.NEW_ATTRIBUTE, [text(Tag.OBJECT_GROUP, "x")])]),
            (Operation.SET_ATTRIBUTE, [uid_item(uid), Item.structure(
                Tag.NEW_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "x")])]),
            (Operation.DELETE_ATTRIBUTE, [uid_item(uid), ref(Tag.NAME)])):
        refused = one(kmip_server, V21, op, payload, cert)
        assert refused.reason == ResultReason.PERMISSION_DENIED, op
    assert kmip_labels(kmip_server, uid) == {}
