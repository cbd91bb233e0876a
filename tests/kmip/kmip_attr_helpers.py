"""Helpers of the KMIP attribute and Locate tests (test_ops_attributes.py,
test_ops_locate.py): request items in the 1.4 and 2.1 shapes, one-item calls, and keys
made over REST (one key store)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from keykeeper.cli._x509 import issue_client
from keykeeper.kmip.messages import BatchResult, batch_item, parse_response, request_message
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import decode, encode
from keykeeper.kmip.ttlv.enums import NameType, Operation
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer
from tests.tls.conftest import load_ca, write_issued

V14, V21 = (1, 4), (2, 1)
T = ItemType


def text(tag: int, value: str) -> Item:
    return Item(tag, T.TEXT_STRING, value)


def enum(tag: int, value: int) -> Item:
    return Item(tag, T.ENUMERATION, int(value))


def uid_item(uid: str) -> Item:
    return text(Tag.UNIQUE_IDENTIFIER, uid)


def name_value(name: str) -> Item:
    return Item.structure(Tag.NAME, [text(Tag.NAME_VALUE, name),
                                     enum(Tag.NAME_TYPE, NameType.UNINTERPRETED_TEXT_STRING)])


def v1_attr(name: str, value: Item, index: int | None = None) -> Item:
    children = [text(Tag.ATTRIBUTE_NAME, name)]
    if index is not None:
        children.append(Item(Tag.ATTRIBUTE_INDEX, T.INTEGER, index))
    children.append(Item(Tag.ATTRIBUTE_VALUE, value.type, value.value, value.width))
    return Item.structure(Tag.ATTRIBUTE, children)


def vendor_attr(name: str, value: Item) -> Item:
    return Item.structure(Tag.ATTRIBUTE, [
        text(Tag.VENDOR_IDENTIFICATION, "x"), text(Tag.ATTRIBUTE_NAME, name),
        Item(Tag.ATTRIBUTE_VALUE, value.type, value.value, value.width)])


def ref(tag: int) -> Item:
    return enum(Tag.ATTRIBUTE_REFERENCE, tag)


def run(server: KmipServer, version: tuple[int, int], *items: Item,
        sock_cert: tuple[Path, Path] | None = None) -> list[BatchResult]:
    message = request_message(list(items), version=version)
    if sock_cert is None:
        return parse_response(server.call(message)).items
    sock = server.connect(sock_cert)
    try:
        return parse_response(decode(server.exchange(sock, encode(message)))).items
    finally:
        sock.close()


def one(server: KmipServer, version: tuple[int, int], op: int, payload: list[Item],
        cert: tuple[Path, Path] | None = None) -> BatchResult:
    (result,) = run(server, version, batch_item(op, payload), sock_cert=cert)
    return result


def ok(result: BatchResult) -> Item:
    assert result.ok, (result.reason, result.message)
    assert result.payload is not None
    return result.payload


def make_key(server: KmipServer, purpose: str = "encrypt", algorithm: str = "AES_256_GCM",
             name: str | None = None, **extra: Any) -> tuple[str, str]:
    name = name or "attr-" + secrets.token_hex(6)
    r = server.rest.post("/v1/keys", json={"name": name, "namespace": server.namespace,
                                           "purpose": purpose, "algorithm": algorithm,
                                           **extra})
    assert r.status_code in (200, 201), r.text
    return r.json()["id"] + "/1", name


def val(container: Item, tag: int) -> Any:
    got = container.find(tag)
    assert got is not None, hex(tag)
    return got.value


def attrs_v21(payload: Item) -> Item:
    got = payload.find(Tag.ATTRIBUTES)
    assert got is not None
    return got


def v14_values(payload: Item) -> dict[str, list[tuple[int, Item]]]:
    out: dict[str, list[tuple[int, Item]]] = {}
    for a in payload.find_all(Tag.ATTRIBUTE):
        name = a.find(Tag.ATTRIBUTE_NAME)
        idx = a.find(Tag.ATTRIBUTE_INDEX)
        value = a.find(Tag.ATTRIBUTE_VALUE)
        assert name is not None and value is not None
        out.setdefault(str(name.value), []).append(
            (int(idx.value) if idx is not None else 0, value))  # type: ignore[arg-type]
    return out


def kmip_labels(server: KmipServer, uid: str) -> dict[str, str]:
    r = server.rest.get(f"/v1/keys/{uid.split('/')[0]}")
    assert r.status_code == 200, r.text
    return {k: v for k, v in r.json()["labels"].items() if k.startswith("kmip.")}


def locate(server: KmipServer, version: tuple[int, int], attrs: list[Item],
           extra: list[Item] | None = None,
           cert: tuple[Path, Path] | None = None) -> tuple[list[str], int | None]:
    """(Unique Identifiers, Located Items or None) of a Locate."""
    if version >= (2, 0):
        payload = [*(extra or []), Item.structure(Tag.ATTRIBUTES, attrs)]
    else:
        payload = [*(extra or []), *attrs]
    result = ok(one(server, version, Operation.LOCATE, payload, cert))
    located = result.find(Tag.LOCATED_ITEMS)
    return ([str(u.value) for u in result.find_all(Tag.UNIQUE_IDENTIFIER)],
            int(located.value) if located is not None else None)  # type: ignore[arg-type]


def principal_cert(server: KmipServer, pki: Any, directory: Path, name: str,
                   operations: list[str], namespace: str) -> tuple[Path, Path]:
    """A principal ``name`` holding ``operations`` on ``namespace`` and a client
    certificate (CN=name) that maps to it."""
    for path, body in (
            ("/v1/roles", {"name": name, "operations": operations}),
            ("/v1/grants", {"grantee": f"role:{name}", "operations": operations,
                            "namespace": namespace}),
            ("/v1/principals", {"name": name, "kind": "service", "roles": [name],
                                "certificate_subjects": [f"CN={name}"]})):
        r = server.rest.post(path, json=body)
        assert r.status_code in (200, 201), (path, r.text)
    return write_issued(issue_client(load_ca(pki), name, days=1), directory, name)
