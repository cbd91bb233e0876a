"""Secret Data and Opaque Objects (kmip/stored_data.py): Register, Get, Locate, Get
Attributes, Activate, Revoke, Destroy over KMIP; the same object seen over REST (one key
store), REST crypto on it refused, size limits.

In-process: the operation handlers against real services over a real store (SQLite and
PostgreSQL, tests/kmip/objects_support.py). Live: the real KMIP listener and the REST API
of the same server (tests/kmip/conftest.py).
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import keywrap

from keykeeper.crypto.stored import MAX_STORED_BYTES
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.errors import KeykeeperError
from keykeeper.kmip.stored_data import DATA_TYPE_LABEL
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    BlockCipherMode,
    EncodingOption,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    RevocationReasonCode,
    SecretDataType,
    State,
    WrappingMethod,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import (
    A,
    Kmip,
    U,
    alg,
    enum,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    length,
    live_call,
    material,
    name_value,
    reason_of,
    struct,
    template,
    text,
    uid_of,
)

OPAQUE_TYPE = 0x80000001


def _secret(data: bytes, fmt: int = KeyFormatType.OPAQUE,
            kind: int = SecretDataType.PASSWORD) -> Item:
    return struct(Tag.SECRET_DATA, enum(Tag.SECRET_DATA_TYPE, kind), struct(
        Tag.KEY_BLOCK, enum(Tag.KEY_FORMAT_TYPE, fmt),
        struct(Tag.KEY_VALUE, Item(int(Tag.KEY_MATERIAL), ItemType.BYTE_STRING, data))))


def _opaque(data: bytes, kind: int = OPAQUE_TYPE) -> Item:
    return struct(Tag.OPAQUE_OBJECT, enum(Tag.OPAQUE_DATA_TYPE, kind),
                  Item(int(Tag.OPAQUE_DATA_VALUE), ItemType.BYTE_STRING, data))


def _register(kmip: Kmip, otype: ObjectType, managed: Item, **attrs: Item) -> str:
    return uid_of(kmip(Operation.REGISTER, enum(Tag.OBJECT_TYPE, otype),
                       template(kmip.version, **attrs), managed))


def _locate(kmip: Kmip, **attrs: Item) -> list[str]:
    out = kmip(Operation.LOCATE, *template(kmip.version, **attrs).children) \
        if kmip.version < (2, 0) else kmip(Operation.LOCATE, template(kmip.version, **attrs))
    return [str(i.value) for i in out.find_all(int(Tag.UNIQUE_IDENTIFIER))]


def _attribute(kmip: Kmip, uid: str, tag: int) -> Any:
    """The value of the attribute under ``tag`` in a Get Attributes answer (2.x: the
    item itself; 1.x: the Attribute Value of the Attribute of that name)."""
    out = kmip(Operation.GET_ATTRIBUTES, text(Tag.UNIQUE_IDENTIFIER, uid))
    name = Tag(tag).name.replace("_", " ").title()
    for item in _walk(out):
        if item.tag == tag:
            return item.value
        if item.tag == Tag.ATTRIBUTE:
            got = item.find(int(Tag.ATTRIBUTE_NAME))
            if got is not None and str(got.value).title() == name:
                value = item.find(int(Tag.ATTRIBUTE_VALUE))
                return None if value is None else value.value
    return None


def _walk(item: Item) -> list[Item]:
    """The payload's attribute items (not the fields of a structured value)."""
    found = [item]
    if item.tag in (Tag.RESPONSE_PAYLOAD, Tag.ATTRIBUTES):
        for child in item.children:
            found.extend(_walk(child))
    return found


def test_secret_data_register_get_locate_destroy(kmip: Kmip) -> None:
    data = b"correct horse battery staple"
    uid = _register(kmip, ObjectType.SECRET_DATA, _secret(data),
                    Name=name_value("db-password"))
    key = kmip.key(uid)
    assert uid == f"{key.id}/1"
    assert (key.algorithm, str(key.purpose), key.origin) == ("SECRET_DATA", "store", "external")
    assert key.state == KeyState.PRE_ACTIVE and key.name == "db-password"
    assert key.labels[DATA_TYPE_LABEL] == str(int(SecretDataType.PASSWORD))
    assert key.rotation_period is None

    got = kmip.get(uid)
    assert got.find(int(Tag.OBJECT_TYPE)).value == ObjectType.SECRET_DATA  # type: ignore[union-attr]
    secret = got.find(int(Tag.SECRET_DATA))
    assert secret is not None
    assert secret.find(int(Tag.SECRET_DATA_TYPE)).value == SecretDataType.PASSWORD  # type: ignore[union-attr]
    block = secret.find(int(Tag.KEY_BLOCK))
    assert block is not None
    assert block.find(int(Tag.KEY_FORMAT_TYPE)).value == KeyFormatType.OPAQUE  # type: ignore[union-attr]
    assert block.find(int(Tag.CRYPTOGRAPHIC_ALGORITHM)) is None
    assert block.find(int(Tag.CRYPTOGRAPHIC_LENGTH)) is None
    value = block.find(int(Tag.KEY_VALUE))
    assert value is not None and value.find(int(Tag.KEY_MATERIAL)).value == data  # type: ignore[union-attr]
    raw = kmip.get(uid, KeyFormatType.RAW).find(int(Tag.SECRET_DATA))
    assert raw is not None and raw.find(int(Tag.KEY_BLOCK)).find(  # type: ignore[union-attr]
        int(Tag.KEY_FORMAT_TYPE)).value == KeyFormatType.RAW
    with pytest.raises(KeykeeperError) as wrong_format:
        kmip.get(uid, KeyFormatType.PKCS_8)
    assert reason_of(wrong_format.value) == "Key_Format_Type_Not_Supported"

    assert _attribute(kmip, uid, Tag.OBJECT_TYPE) == ObjectType.SECRET_DATA
    assert _attribute(kmip, uid, Tag.CRYPTOGRAPHIC_LENGTH) is None
    # No Digest: a hash of a password in the labels REST shows could be guessed offline.
    kmip(Operation.ADD_ATTRIBUTE, text(Tag.UNIQUE_IDENTIFIER, uid), *(
        [struct(Tag.NEW_ATTRIBUTE, text(Tag.OBJECT_GROUP, "g"))] if kmip.version >= (2, 0)
        else [struct(Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, "Object Group"),
                     text(Tag.ATTRIBUTE_VALUE, "g"))]))
    assert _attribute(kmip, uid, Tag.DIGEST) is None
    assert not any("igest" in k or "igest" in v for k, v in kmip.key(uid).labels.items())
    assert _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA)) == [uid]
    aes = kmip.create_aes(256)
    assert uid not in _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY))
    assert aes not in _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA))

    # Lifecycle as any key: activate, revoke, destroy (crypto-erasure).
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert kmip.key(uid).state == KeyState.ACTIVE
    with pytest.raises(KeykeeperError):   # active: revoke first
        kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    kmip.revoke(uid, RevocationReasonCode.CESSATION_OF_OPERATION)
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    gone = kmip.key(uid)
    assert gone.state == KeyState.DESTROYED
    assert gone.versions[0].state == VersionState.DESTROYED
    with pytest.raises(KeykeeperError) as destroyed:
        kmip.get(uid)
    assert reason_of(destroyed.value) in ("Object_Destroyed", "Wrong_Key_Lifecycle_State")
    assert _attribute(kmip, uid, Tag.STATE) == State.DESTROYED


def test_secret_data_get_wrapped(kmip: Kmip) -> None:
    data = b"a seed of 21 bytes..."
    uid = _register(kmip, ObjectType.SECRET_DATA, _secret(data, KeyFormatType.RAW,
                                                          SecretDataType.SEED))
    wrapper = kmip.create_aes(256, usage=int(U.WRAP_KEY | U.UNWRAP_KEY))
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, wrapper))
    kek = material(kmip.get(wrapper)).value
    assert isinstance(kek, bytes)
    spec = struct(Tag.KEY_WRAPPING_SPECIFICATION,
                  enum(Tag.WRAPPING_METHOD, WrappingMethod.ENCRYPT),
                  struct(Tag.ENCRYPTION_KEY_INFORMATION, text(Tag.UNIQUE_IDENTIFIER, wrapper),
                         struct(Tag.CRYPTOGRAPHIC_PARAMETERS, enum(
                             Tag.BLOCK_CIPHER_MODE, BlockCipherMode.AESKEYWRAPPADDING))),
                  enum(Tag.ENCODING_OPTION, EncodingOption.NO_ENCODING))
    secret = kmip.get(uid, None, spec).find(int(Tag.SECRET_DATA))
    assert secret is not None
    assert secret.find(int(Tag.SECRET_DATA_TYPE)).value == SecretDataType.SEED  # type: ignore[union-attr]
    block = secret.find(int(Tag.KEY_BLOCK))
    assert block is not None and block.find(int(Tag.KEY_WRAPPING_DATA)) is not None
    wrapped = block.find(int(Tag.KEY_VALUE))
    assert wrapped is not None and isinstance(wrapped.value, bytes)
    assert keywrap.aes_key_unwrap_with_padding(kek, wrapped.value) == data
    opaque = _register(kmip, ObjectType.OPAQUE_OBJECT, _opaque(b"blob"))
    with pytest.raises(KeykeeperError) as refused:
        kmip.get(opaque, None, spec)
    assert reason_of(refused.value) == "Invalid_Field"


def test_opaque_object_register_get_locate_destroy(kmip: Kmip) -> None:
    data = bytes(range(256)) * 4
    uid = _register(kmip, ObjectType.OPAQUE_OBJECT, _opaque(data))
    key = kmip.key(uid)
    assert (key.algorithm, str(key.purpose)) == ("OPAQUE_DATA", "store")
    got = kmip.get(uid)
    assert got.find(int(Tag.OBJECT_TYPE)).value == ObjectType.OPAQUE_OBJECT  # type: ignore[union-attr]
    opaque = got.find(int(Tag.OPAQUE_OBJECT))
    assert opaque is not None
    assert opaque.find(int(Tag.OPAQUE_DATA_TYPE)).value == OPAQUE_TYPE  # type: ignore[union-attr]
    assert opaque.find(int(Tag.OPAQUE_DATA_VALUE)).value == data  # type: ignore[union-attr]
    assert opaque.find(int(Tag.KEY_BLOCK)) is None
    with pytest.raises(KeykeeperError) as formatted:
        kmip.get(uid, KeyFormatType.RAW)
    assert reason_of(formatted.value) == "Invalid_Field"
    assert _attribute(kmip, uid, Tag.OBJECT_TYPE) == ObjectType.OPAQUE_OBJECT
    assert _attribute(kmip, uid, Tag.KEY_FORMAT_TYPE) is None
    assert _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.OPAQUE_OBJECT)) == [uid]
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))   # pre-active: destroyable
    assert kmip.key(uid).versions[0].state == VersionState.DESTROYED


def test_stored_data_refusals(kmip: Kmip) -> None:
    for data in (b"", b"x" * (MAX_STORED_BYTES + 1)):
        with pytest.raises(KeykeeperError) as bad:
            _register(kmip, ObjectType.SECRET_DATA, _secret(data))
        assert reason_of(bad.value) == "Invalid_Field"
        assert "1 to 65536 bytes" in str(bad.value.detail)
    assert _register(kmip, ObjectType.OPAQUE_OBJECT, _opaque(b"y" * MAX_STORED_BYTES))
    with pytest.raises(KeykeeperError) as wrong_format:
        _register(kmip, ObjectType.SECRET_DATA, _secret(b"abc", KeyFormatType.PKCS_8))
    assert reason_of(wrong_format.value) == "Key_Format_Type_Not_Supported"
    with pytest.raises(KeykeeperError) as missing:
        kmip(Operation.REGISTER, enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA),
             template(kmip.version), _opaque(b"abc"))
    assert reason_of(missing.value) == "Invalid_Field"
    # Never used as a key: no crypto, no Re-Key.
    uid = _register(kmip, ObjectType.SECRET_DATA, _secret(b"seed" * 8, kind=SecretDataType.SEED))
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    with pytest.raises(KeykeeperError) as encrypt:
        kmip(Operation.ENCRYPT, text(Tag.UNIQUE_IDENTIFIER, uid),
             Item(int(Tag.DATA), ItemType.BYTE_STRING, b"m"))
    assert reason_of(encrypt.value) == "Incompatible_Cryptographic_Usage_Mask"
    with pytest.raises(KeykeeperError) as rekey:
        kmip(Operation.RE_KEY, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert reason_of(rekey.value) == "Invalid_Field"
    # Create does not make stored data.
    with pytest.raises(KeykeeperError) as create:
        kmip(Operation.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA),
             template(kmip.version, Cryptographic_Algorithm=alg(A.AES),
                      Cryptographic_Length=length(256)))
    assert reason_of(create.value) == "Invalid_Field"


# -- one store: KMIP and REST over the same server ----------------------------------------------


def test_live_secret_data_is_a_key_over_rest(live) -> None:  # type: ignore[no-untyped-def]
    registered = live_call(live, Operation.REGISTER,
                            enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA),
                            template((2, 1), Name=name_value("live-secret-1")),
                            _secret(b"hunter2hunter2"))
    assert registered.ok, registered.message
    uid = uid_of(registered.payload)
    key_id = uid.split("/")[0]
    assert live_call(live, Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid)).ok

    seen = live.rest.get(f"/v1/keys/{key_id}")
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["purpose"], body["algorithm"], body["state"], body["origin"]) == (
        "store", "SECRET_DATA", "active", "external")
    listed: list[dict[str, Any]] = []
    token = None
    while True:   # listed by purpose, as any key
        page = live.rest.get("/v1/keys", params={"namespace": live.namespace,
                                                 "purpose": "store",
                                                 **({"page_token": token} if token else {})})
        assert page.status_code == 200, page.text
        listed += page.json()["keys"]
        token = page.json().get("next_page_token")
        if not token:
            break
    assert key_id in [k["id"] for k in listed]
    assert {k["purpose"] for k in listed} == {"store"}
    versions = live.rest.get(f"/v1/keys/{key_id}/versions")
    assert versions.status_code == 200, versions.text

    # No cryptographic operation takes stored data: the usual wrong-purpose error.
    enc = live.rest.post(f"/v1/keys/{key_id}/encrypt",
                         json={"plaintext": base64.b64encode(b"x").decode()})
    assert enc.status_code == 409 and "purpose 'store'" in enc.text, enc.text
    sign = live.rest.post(f"/v1/keys/{key_id}/sign",
                          json={"message": base64.b64encode(b"x").decode()})
    assert sign.status_code == 409 and "purpose 'store'" in sign.text, sign.text
    rotate = live.rest.post(f"/v1/keys/{key_id}/rotate")   # registered: never rotated here
    assert rotate.status_code == 409 and "cannot be rotated" in rotate.text, rotate.text
    made = live.rest.post("/v1/keys", json={"name": "rest-secret-1", "namespace":
                                             live.namespace, "algorithm": "SECRET_DATA"})
    assert made.status_code == 400 and "does not generate" in made.text, made.text

    # Audited as any key operation.
    records: list[dict[str, Any]] = []
    for _ in range(50):
        r = live.rest.get("/v1/audit", params={"operation": "kmip.register"})
        assert r.status_code == 200, r.text
        records = [rec for rec in r.json()["records"] if rec.get("key_id") == key_id]
        if records:
            break
        time.sleep(0.1)
    assert records

    # Revoke and destroy over REST's view: the version is crypto-erased.
    revoked = live_call(live, Operation.REVOKE, text(Tag.UNIQUE_IDENTIFIER, uid), struct(
        Tag.REVOCATION_REASON, enum(Tag.REVOCATION_REASON_CODE,
                                    RevocationReasonCode.CESSATION_OF_OPERATION)))
    assert revoked.ok, revoked.message
    assert live_call(live, Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid)).ok
    after = live.rest.get(f"/v1/keys/{key_id}")
    assert after.json()["state"] == "destroyed"
    got = live_call(live, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert not got.ok and got.reason == ResultReason.OBJECT_DESTROYED


def test_live_unknown_object_reason_by_version(live) -> None:  # type: ignore[no-untyped-def]
    """KMIP 2.x names an unknown Unique Identifier Object_Not_Found (the KMIP 2.1 test case
    BL-M-4-21); a 1.x client gets Item_Not_Found, the reason its version has."""
    from keykeeper.kmip.messages import batch_item, parse_response, request_message
    for version, reason in (((2, 1), ResultReason.OBJECT_NOT_FOUND),
                            ((2, 0), ResultReason.OBJECT_NOT_FOUND),
                            ((1, 4), ResultReason.ITEM_NOT_FOUND)):
        for uid in ("AAABBBCCC", "k-" + "0" * 32 + "/1"):
            response = parse_response(live.call(request_message(
                [batch_item(int(Operation.GET), [text(Tag.UNIQUE_IDENTIFIER, uid)])],
                version=version)))
            assert response.items[0].reason == reason, (version, uid)
