"""KMIP attributes against a real server (tests/kmip/conftest.py): Get Attributes and Get
Attribute List in the 1.4 and 2.1 shapes, Digest, Add / Modify / Delete / Set Attribute
with Attribute Indexes, custom attributes of every primitive type, read-only refusals and
lifecycle dates. Keys are made over REST: one key store. Locate: test_ops_locate.py."""

from __future__ import annotations

import hashlib
import time

import pytest
from cryptography.hazmat.primitives import serialization

import keykeeper.kmip.ops  # noqa: F401  (the dispatch table first: its modules import helpers)
from keykeeper.kmip.attributes_store import decode_object, encode_object
from keykeeper.kmip.messages import batch_item
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    HashingAlgorithm,
    KeyFormatType,
    LinkType,
    ObjectType,
    Operation,
    ResultReason,
    State,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer
from tests.kmip.kmip_attr_helpers import (
    V14,
    V21,
    T,
    attrs_v21,
    enum,
    kmip_labels,
    make_key,
    name_value,
    ok,
    one,
    ref,
    run,
    text,
    uid_item,
    v1_attr,
    v14_values,
    val,
    vendor_attr,
)


# -- the label encoding (pure) -----------------------------------------------------------
def test_label_encoding_round_trips_every_type() -> None:
    values = [Item(Tag.ATTRIBUTE_VALUE, T.INTEGER, -5), Item(Tag.ATTRIBUTE_VALUE, T.LONG_INTEGER,
              2**40), Item(Tag.ATTRIBUTE_VALUE, T.BIG_INTEGER, 2**70, 16),
              Item(Tag.ATTRIBUTE_VALUE, T.ENUMERATION, 7), Item(Tag.ATTRIBUTE_VALUE, T.BOOLEAN,
              False), Item(Tag.ATTRIBUTE_VALUE, T.TEXT_STRING, "héllo wörld"),
              Item(Tag.ATTRIBUTE_VALUE, T.BYTE_STRING, b"\x00\x01\xff"),
              Item(Tag.ATTRIBUTE_VALUE, T.DATE_TIME, 1_700_000_000),
              Item(Tag.ATTRIBUTE_VALUE, T.INTERVAL, 86400),
              Item(Tag.ATTRIBUTE_VALUE, T.DATE_TIME_EXTENDED, 1_700_000_000_123_456),
              name_value("a name")]
    stored: dict[str, list[tuple[int, Item | None]]] = {
        f"x-Attr {i}": [(i * 2, v)] for i, v in enumerate(values)}
    stored["Name"] = [(0, None), (3, name_value("n"))]
    labels = encode_object({"kmip.2.other.0": '["x-o",null]'}, "1p", stored)
    assert labels["kmip.2.other.0"] == '["x-o",null]'
    assert all(k.startswith("kmip.") and len(v) <= 256 for k, v in labels.items())
    assert decode_object(labels, "1p") == stored
    assert decode_object({**labels, "kmip.1p.junk.0": "not json"}, "1p") == stored


# -- Get Attributes / Get Attribute List -------------------------------------------------
def test_get_attributes_v21_shape(kmip_server: KmipServer) -> None:
    uid, name = make_key(kmip_server)
    payload = ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(uid), ref(Tag.STATE), ref(Tag.OBJECT_TYPE), ref(Tag.CRYPTOGRAPHIC_ALGORITHM),
        ref(Tag.CRYPTOGRAPHIC_LENGTH), ref(Tag.NAME), ref(Tag.CRYPTOGRAPHIC_USAGE_MASK),
        ref(Tag.KEY_FORMAT_TYPE)]))
    assert payload.find(Tag.UNIQUE_IDENTIFIER) == uid_item(uid)
    got = attrs_v21(payload)
    assert [c.tag for c in got.children] == [
        Tag.STATE, Tag.OBJECT_TYPE, Tag.CRYPTOGRAPHIC_ALGORITHM, Tag.CRYPTOGRAPHIC_LENGTH,
        Tag.NAME, Tag.CRYPTOGRAPHIC_USAGE_MASK, Tag.KEY_FORMAT_TYPE]
    assert val(got, Tag.STATE) == State.ACTIVE
    assert val(got, Tag.OBJECT_TYPE) == ObjectType.SYMMETRIC_KEY
    assert val(got, Tag.CRYPTOGRAPHIC_ALGORITHM) == CryptographicAlgorithm.AES
    assert val(got, Tag.CRYPTOGRAPHIC_LENGTH) == 256
    assert got.find(Tag.NAME) == name_value(name)
    assert val(got, Tag.CRYPTOGRAPHIC_USAGE_MASK) == 4 | 8  # Encrypt | Decrypt


def test_get_attributes_v14_shape_and_version_filter(kmip_server: KmipServer) -> None:
    uid, name = make_key(kmip_server)
    payload = ok(one(kmip_server, V14, Operation.GET_ATTRIBUTES, [uid_item(uid)]))
    values = v14_values(payload)
    assert values["Unique Identifier"] == [(0, text(Tag.ATTRIBUTE_VALUE, uid))]
    assert values["Object Type"][0][1].value == ObjectType.SYMMETRIC_KEY
    assert val(values["Name"][0][1], Tag.NAME_VALUE) == name
    assert "Key Format Type" not in values  # a 2.x attribute
    payload = ok(one(kmip_server, (1, 0), Operation.GET_ATTRIBUTES, [uid_item(uid)]))
    assert "Extractable" not in v14_values(payload)  # 1.4 attributes are not 1.0's
    only = ok(one(kmip_server, V14, Operation.GET_ATTRIBUTES, [
        uid_item(uid), text(Tag.ATTRIBUTE_NAME, "Cryptographic Length"),
        text(Tag.ATTRIBUTE_NAME, "State")]))
    assert list(v14_values(only)) == ["Cryptographic Length", "State"]


def test_get_attribute_list_both_shapes(kmip_server: KmipServer) -> None:
    uid, _ = make_key(kmip_server)
    ok(one(kmip_server, V21, Operation.ADD_ATTRIBUTE, [
        uid_item(uid), Item.structure(Tag.NEW_ATTRIBUTE, [
            vendor_attr("Barcode", text(Tag.ATTRIBUTE_VALUE, "XXA012"))])]))
    v14 = ok(one(kmip_server, V14, Operation.GET_ATTRIBUTE_LIST, [uid_item(uid)]))
    names = [a.value for a in v14.find_all(Tag.ATTRIBUTE_NAME)]
    assert names[0] == "x-Barcode"
    assert {"Unique Identifier", "Object Type", "Cryptographic Algorithm", "State",
            "Name"} <= set(names)
    v21 = ok(one(kmip_server, V21, Operation.GET_ATTRIBUTE_LIST, [uid_item(uid)]))
    refs = v21.find_all(Tag.ATTRIBUTE_REFERENCE)
    assert val(refs[0], Tag.VENDOR_IDENTIFICATION) == "x"
    assert val(refs[0], Tag.ATTRIBUTE_NAME) == "Barcode"
    assert enum(Tag.ATTRIBUTE_REFERENCE, Tag.KEY_FORMAT_TYPE) in refs


def test_public_part_of_a_key_pair(kmip_server: KmipServer) -> None:
    uid, _ = make_key(kmip_server, "sign", "ECDSA_P256_SHA256")
    public = uid + "/public"
    got = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(public), ref(Tag.OBJECT_TYPE), ref(Tag.LINK), ref(Tag.CRYPTOGRAPHIC_USAGE_MASK),
        ref(Tag.NAME)])))
    assert val(got, Tag.OBJECT_TYPE) == ObjectType.PUBLIC_KEY
    link = got.find(Tag.LINK)
    assert link is not None and val(link, Tag.LINK_TYPE) == LinkType.PRIVATE_KEY_LINK
    assert val(link, Tag.LINKED_OBJECT_IDENTIFIER) == uid
    assert val(got, Tag.CRYPTOGRAPHIC_USAGE_MASK) == 2  # Verify
    assert got.find(Tag.NAME) is None  # the name is the private key's
    private = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(uid), ref(Tag.OBJECT_TYPE), ref(Tag.CRYPTOGRAPHIC_USAGE_MASK)])))
    assert val(private, Tag.OBJECT_TYPE) == ObjectType.PRIVATE_KEY
    assert val(private, Tag.CRYPTOGRAPHIC_USAGE_MASK) == 1  # Sign
    sym, _ = make_key(kmip_server)
    missing = one(kmip_server, V21, Operation.GET_ATTRIBUTES, [uid_item(sym + "/public")])
    assert missing.reason == ResultReason.OBJECT_NOT_FOUND   # Item_Not_Found before 2.0
    assert one(kmip_server, V21, Operation.GET_ATTRIBUTES,
               [uid_item("nope")]).reason == ResultReason.OBJECT_NOT_FOUND


def test_digest_of_secret_and_public_keys(kmip_server: KmipServer) -> None:
    uid, _ = make_key(kmip_server)
    first = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(uid), ref(Tag.DIGEST)]))).find(Tag.DIGEST)
    assert first is not None
    assert val(first, Tag.HASHING_ALGORITHM) == HashingAlgorithm.SHA_256
    assert val(first, Tag.KEY_FORMAT_TYPE) == KeyFormatType.RAW
    assert len(val(first, Tag.DIGEST_VALUE)) == 32
    again = v14_values(ok(one(kmip_server, V14, Operation.GET_ATTRIBUTES, [
        uid_item(uid), text(Tag.ATTRIBUTE_NAME, "Digest")])))["Digest"]
    assert again == [(0, Item(Tag.ATTRIBUTE_VALUE, T.STRUCTURE, first.children))]
    pair, _ = make_key(kmip_server, "sign", "ECDSA_P256_SHA256")
    pem = kmip_server.rest.get(f"/v1/keys/{pair.split('/')[0]}/public-key").json()["public_key"]
    spki = serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    public = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(pair + "/public"), ref(Tag.DIGEST)]))).find(Tag.DIGEST)
    assert public is not None
    assert val(public, Tag.DIGEST_VALUE) == hashlib.sha256(spki).digest()
    assert val(public, Tag.KEY_FORMAT_TYPE) == KeyFormatType.X_509


# -- custom attributes of every type ------------------------------------------------------
CUSTOM = [Item(Tag.ATTRIBUTE_VALUE, T.INTEGER, -42), Item(Tag.ATTRIBUTE_VALUE, T.LONG_INTEGER,
          -(2**50)), Item(Tag.ATTRIBUTE_VALUE, T.BIG_INTEGER, 2**65 + 1, 16),
          Item(Tag.ATTRIBUTE_VALUE, T.ENUMERATION, 3), Item(Tag.ATTRIBUTE_VALUE, T.BOOLEAN, True),
          Item(Tag.ATTRIBUTE_VALUE, T.TEXT_STRING, "tape XXA012A1"),
          Item(Tag.ATTRIBUTE_VALUE, T.BYTE_STRING, b"\x00\x10\x20"),
          Item(Tag.ATTRIBUTE_VALUE, T.DATE_TIME, 1_600_000_000),
          Item(Tag.ATTRIBUTE_VALUE, T.INTERVAL, 3600),
          Item(Tag.ATTRIBUTE_VALUE, T.DATE_TIME_EXTENDED, 1_600_000_000_000_001)]


@pytest.mark.parametrize("version", [V14, V21])
def test_custom_attributes_of_every_type_round_trip(kmip_server: KmipServer,
                                                     version: tuple[int, int]) -> None:
    uid, _ = make_key(kmip_server)
    adds = []
    for i, value in enumerate(CUSTOM):
        if version == V14:
            adds.append(batch_item(Operation.ADD_ATTRIBUTE, [uid_item(uid),
                                                             v1_attr(f"x-type {i}", value)]))
        else:
            adds.append(batch_item(Operation.ADD_ATTRIBUTE, [uid_item(uid), Item.structure(
                Tag.NEW_ATTRIBUTE, [vendor_attr(f"type {i}", value)])]))
    for result in run(kmip_server, version, *adds):
        ok(result)
    payload = ok(one(kmip_server, version, Operation.GET_ATTRIBUTES, [uid_item(uid)]))
    if version == V14:
        values = v14_values(payload)
        for i, value in enumerate(CUSTOM):
            assert values[f"x-type {i}"] == [(0, value)]
    else:
        vendor = {str(val(a, Tag.ATTRIBUTE_NAME)): a.find(Tag.ATTRIBUTE_VALUE)
                  for a in attrs_v21(payload).find_all(Tag.ATTRIBUTE)}
        for i, value in enumerate(CUSTOM):
            assert vendor[f"type {i}"] == value
    assert len(kmip_labels(kmip_server, uid)) == len(CUSTOM)  # one store: labels over REST


def test_too_many_attributes_is_invalid_field(kmip_server: KmipServer) -> None:
    uid, _ = make_key(kmip_server)
    adds = [batch_item(Operation.ADD_ATTRIBUTE, [uid_item(uid), v1_attr(
        "x-many", text(Tag.ATTRIBUTE_VALUE, str(i)))]) for i in range(65)]
    results = run(kmip_server, V14, *adds)
    assert all(r.ok for r in results[:64])
    assert results[64].reason == ResultReason.INVALID_FIELD
    assert "too many attributes" in (results[64].message or "")
    long = one(kmip_server, V14, Operation.ADD_ATTRIBUTE, [uid_item(uid), v1_attr(
        "x-long", text(Tag.ATTRIBUTE_VALUE, "a" * 300))])
    assert long.reason == ResultReason.INVALID_FIELD


# -- Add / Modify / Delete / Set ------------------------------------------------------------
def test_v14_indexes_survive_add_modify_delete(kmip_server: KmipServer) -> None:
    uid, name = make_key(kmip_server)
    added = ok(one(kmip_server, V14, Operation.ADD_ATTRIBUTE, [
        uid_item(uid), v1_attr("Name", name_value("second"))]))
    assert v14_values(added)["Name"] == [
        (1, Item(Tag.ATTRIBUTE_VALUE, T.STRUCTURE, name_value("second").children))]
    ok(one(kmip_server, V14, Operation.ADD_ATTRIBUTE, [uid_item(uid),
                                                        v1_attr("Name", name_value("third"))]))
    modified = ok(one(kmip_server, V14, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid), v1_attr("Name", name_value("third-b"), index=2)]))
    assert v14_values(modified)["Name"][0][0] == 2
    deleted = ok(one(kmip_server, V14, Operation.DELETE_ATTRIBUTE, [
        uid_item(uid), text(Tag.ATTRIBUTE_NAME, "Name"), Item(Tag.ATTRIBUTE_INDEX, T.INTEGER, 0)]))
    assert val(v14_values(deleted)["Name"][0][1], Tag.NAME_VALUE) == name
    names = v14_values(ok(one(kmip_server, V14, Operation.GET_ATTRIBUTES, [
        uid_item(uid), text(Tag.ATTRIBUTE_NAME, "Name")])))["Name"]
    assert [(i, val(v, Tag.NAME_VALUE)) for i, v in names] == [
        (1, "second"), (2, "third-b")]
    gone = one(kmip_server, V14, Operation.DELETE_ATTRIBUTE, [
        uid_item(uid), text(Tag.ATTRIBUTE_NAME, "Name"), Item(Tag.ATTRIBUTE_INDEX, T.INTEGER, 7)])
    assert gone.reason == ResultReason.ITEM_NOT_FOUND


def test_v21_set_modify_delete(kmip_server: KmipServer) -> None:
    uid, _ = make_key(kmip_server)

    def contact() -> Item | None:
        got = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
            uid_item(uid), ref(Tag.CONTACT_INFORMATION)])))
        return got.find(Tag.CONTACT_INFORMATION)

    new = Item.structure(Tag.NEW_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "ops@example")])
    assert ok(one(kmip_server, V21, Operation.SET_ATTRIBUTE, [uid_item(uid), new])).children \
        == [uid_item(uid)]
    assert contact() == text(Tag.CONTACT_INFORMATION, "ops@example")
    ok(one(kmip_server, V21, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid),
        Item.structure(Tag.CURRENT_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "ops@example")]),
        Item.structure(Tag.NEW_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "sec@example")])]))
    assert contact() == text(Tag.CONTACT_INFORMATION, "sec@example")
    wrong = one(kmip_server, V21, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid),
        Item.structure(Tag.CURRENT_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "nobody")]),
        Item.structure(Tag.NEW_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "x")])])
    assert wrong.reason == ResultReason.ATTRIBUTE_NOT_FOUND
    ok(one(kmip_server, V21, Operation.DELETE_ATTRIBUTE, [uid_item(uid),
                                                          ref(Tag.CONTACT_INFORMATION)]))
    assert contact() is None
    multi = one(kmip_server, V21, Operation.SET_ATTRIBUTE, [uid_item(uid), Item.structure(
        Tag.NEW_ATTRIBUTE, [text(Tag.OBJECT_GROUP, "g")])])
    assert multi.reason == ResultReason.MULTI_VALUED_ATTRIBUTE
    twice = one(kmip_server, V21, Operation.ADD_ATTRIBUTE, [uid_item(uid), Item.structure(
        Tag.NEW_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "a")])])
    assert twice.ok
    again = one(kmip_server, V21, Operation.ADD_ATTRIBUTE, [uid_item(uid), Item.structure(
        Tag.NEW_ATTRIBUTE, [text(Tag.CONTACT_INFORMATION, "b")])])
    assert again.reason == ResultReason.ATTRIBUTE_SINGLE_VALUED


def test_read_only_attributes_are_refused(kmip_server: KmipServer) -> None:
    uid, _ = make_key(kmip_server)
    v14 = one(kmip_server, V14, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid), v1_attr("Cryptographic Algorithm",
                               enum(Tag.ATTRIBUTE_VALUE, CryptographicAlgorithm.RSA))])
    assert v14.reason == ResultReason.PERMISSION_DENIED
    v21 = one(kmip_server, V21, Operation.SET_ATTRIBUTE, [uid_item(uid), Item.structure(
        Tag.NEW_ATTRIBUTE, [Item(Tag.CRYPTOGRAPHIC_LENGTH, T.INTEGER, 128)])])
    assert v21.reason == ResultReason.ATTRIBUTE_READ_ONLY
    deleted = one(kmip_server, V21, Operation.DELETE_ATTRIBUTE, [uid_item(uid), ref(Tag.STATE)])
    assert deleted.reason == ResultReason.ATTRIBUTE_READ_ONLY
    now = Item(Tag.ACTIVATION_DATE, T.DATE_TIME, int(time.time()))
    active = one(kmip_server, V21, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid), Item.structure(Tag.NEW_ATTRIBUTE, [now])])
    assert active.reason == ResultReason.WRONG_KEY_LIFECYCLE_STATE
    old = one(kmip_server, V14, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid), v1_attr("Activation Date", now)])
    assert old.reason == ResultReason.PERMISSION_DENIED
    got = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(uid), ref(Tag.CRYPTOGRAPHIC_LENGTH), ref(Tag.STATE)])))
    assert val(got, Tag.CRYPTOGRAPHIC_LENGTH) == 256
    assert val(got, Tag.STATE) == State.ACTIVE


def test_activation_date_of_a_pre_active_key_changes_its_lifecycle(
        kmip_server: KmipServer) -> None:
    soon = int(time.time()) + 86400
    uid, _ = make_key(kmip_server, activation_date=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(soon)))
    later = Item(Tag.ACTIVATION_DATE, T.DATE_TIME, soon + 3600)
    ok(one(kmip_server, V21, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid), Item.structure(Tag.NEW_ATTRIBUTE, [later])]))
    got = attrs_v21(ok(one(kmip_server, V21, Operation.GET_ATTRIBUTES, [
        uid_item(uid), ref(Tag.STATE), ref(Tag.ACTIVATION_DATE)])))
    assert got.children == [enum(Tag.STATE, State.PRE_ACTIVE), later]
    r = kmip_server.rest.get(f"/v1/keys/{uid.split('/')[0]}")
    assert r.json()["activation_date"].startswith(
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(soon + 3600)))
    now = Item(Tag.ACTIVATION_DATE, T.DATE_TIME, int(time.time()) - 5)
    ok(one(kmip_server, V14, Operation.MODIFY_ATTRIBUTE, [
        uid_item(uid), v1_attr("Activation Date", now)]))
    state = v14_values(ok(one(kmip_server, V14, Operation.GET_ATTRIBUTES, [
        uid_item(uid), text(Tag.ATTRIBUTE_NAME, "State")])))["State"]
    assert state == [(0, enum(Tag.ATTRIBUTE_VALUE, State.ACTIVE))]
