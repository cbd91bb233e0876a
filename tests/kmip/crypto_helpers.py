"""Helpers of the KMIP cryptographic operation tests (test_ops_crypto*.py): request items,
one call over the shared server's connection, answers read back, keys made over REST or
Registered."""


from __future__ import annotations

import secrets
import time
from typing import Any

import keykeeper.kmip.ops  # noqa: F401  (the dispatch table first: its modules import helpers)
from keykeeper.kmip.messages import BatchResult, batch_item, parse_response, request_message
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer

T = ItemType


def b(tag: int, value: bytes) -> Item:
    return Item(tag, T.BYTE_STRING, value)


def enum(tag: int, value: int) -> Item:
    return Item(tag, T.ENUMERATION, int(value))


def params(**kw: Any) -> Item:
    """A Cryptographic Parameters structure: mode=, padding=, hash=, algorithm= (enums),
    tag_length=, random_iv=, mgf_hash=, p_source=."""
    out: list[Item] = []
    if "mode" in kw:
        out.append(enum(Tag.BLOCK_CIPHER_MODE, kw["mode"]))
    if "padding" in kw:
        out.append(enum(Tag.PADDING_METHOD, kw["padding"]))
    if "hash" in kw:
        out.append(enum(Tag.HASHING_ALGORITHM, kw["hash"]))
    if "algorithm" in kw:
        out.append(enum(Tag.CRYPTOGRAPHIC_ALGORITHM, kw["algorithm"]))
    if "random_iv" in kw:
        out.append(Item(Tag.RANDOM_IV, T.BOOLEAN, kw["random_iv"]))
    if "tag_length" in kw:
        out.append(Item(Tag.TAG_LENGTH, T.INTEGER, kw["tag_length"]))
    if "mgf_hash" in kw:
        out.append(enum(Tag.MASK_GENERATOR_HASHING_ALGORITHM, kw["mgf_hash"]))
    if "p_source" in kw:
        out.append(b(Tag.P_SOURCE, kw["p_source"]))
    return Item.structure(Tag.CRYPTOGRAPHIC_PARAMETERS, out)


def call(kmip: KmipServer, op: Operation, uid: str | None, *items: Item) -> BatchResult:
    payload = ([Item(Tag.UNIQUE_IDENTIFIER, T.TEXT_STRING, uid)] if uid else []) + list(items)
    resp = parse_response(kmip.call(request_message([batch_item(int(op), payload)])))
    assert len(resp.items) == 1
    return resp.items[0]


def field(result: BatchResult, tag: int) -> Any:
    assert result.ok, (result.reason, result.message)
    assert result.payload is not None
    item = result.payload.find(tag)
    return None if item is None else item.value


def failed(result: BatchResult, reason: ResultReason) -> str:
    assert not result.ok
    assert result.reason == int(reason), (ResultReason(result.reason or 0), result.message)
    return result.message or ""


def make_key(kmip: KmipServer, purpose: str, algorithm: str) -> str:
    """A key made over REST in the KMIP namespace; its version 1's KMIP UID."""
    name = "crypto-" + secrets.token_hex(6)
    r = kmip.rest.post("/v1/keys", json={"name": name, "namespace": kmip.namespace,
                                          "purpose": purpose, "algorithm": algorithm})
    assert r.status_code in (200, 201), r.text
    return f"{r.json()['id']}/1"


def round_trip(kmip: KmipServer, uid: str, p: Item, data: bytes, *extra: Item) -> bytes:
    enc = call(kmip, Operation.ENCRYPT, uid, p, b(Tag.DATA, data), *extra)
    ct = field(enc, Tag.DATA)
    assert ct != data
    iv = field(enc, Tag.IV_COUNTER_NONCE)
    tag = field(enc, Tag.AUTHENTICATED_ENCRYPTION_TAG)
    back = list(extra)  # the caller's IV and AAD, if any
    if iv is not None:  # drawn by the server
        back.append(b(Tag.IV_COUNTER_NONCE, iv))
    if tag is not None:
        back.append(b(Tag.AUTHENTICATED_ENCRYPTION_TAG, tag))
    dec = call(kmip, Operation.DECRYPT, uid, p, b(Tag.DATA, ct), *back)
    plain = field(dec, Tag.DATA)
    assert isinstance(plain, bytes)
    return plain


def register(kmip: KmipServer, object_type: ObjectType, fmt: KeyFormatType, material: bytes,
             algorithm: CryptographicAlgorithm, bits: int, mask: int,
             stored_params: Item | None = None) -> str:
    """Register a key (2.1 shape), active since an hour; ``stored_params``: one more
    attribute (a Cryptographic Parameters or Usage Limits structure)."""
    attrs = [Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, T.INTEGER, mask),
             Item(Tag.ACTIVATION_DATE, T.DATE_TIME, int(time.time()) - 3600)]
    if stored_params is not None:
        attrs.append(stored_params)
    block = Item.structure(Tag.KEY_BLOCK, [
        enum(Tag.KEY_FORMAT_TYPE, fmt),
        Item.structure(Tag.KEY_VALUE, [b(Tag.KEY_MATERIAL, material)]),
        enum(Tag.CRYPTOGRAPHIC_ALGORITHM, algorithm),
        Item(Tag.CRYPTOGRAPHIC_LENGTH, T.INTEGER, bits)])
    wrapper = Tag.SYMMETRIC_KEY if object_type == ObjectType.SYMMETRIC_KEY else Tag.PRIVATE_KEY
    r = call(kmip, Operation.REGISTER, None, enum(Tag.OBJECT_TYPE, object_type),
             Item.structure(Tag.ATTRIBUTES, attrs), Item.structure(wrapper, [block]))
    uid = field(r, Tag.UNIQUE_IDENTIFIER)
    assert isinstance(uid, str)
    return uid
