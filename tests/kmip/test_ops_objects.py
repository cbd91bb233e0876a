"""KMIP object operations (issue 5 §2, §3): Create, Create Key Pair, Activate, Revoke,
Destroy, Re-Key, Re-Key Key Pair, Check, Get Usage Allocation, Get.

In-process: the operation handlers run against real services over a real store (SQLite
and PostgreSQL), as the processor calls them (tests/kmip/objects_support.py). Live: round
trips through the real KMIP listener (tests/kmip/conftest.py) and the REST API of the
same server: one key store.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keykeeper.domain.states import KeyState, VersionState
from keykeeper.errors import KeykeeperError
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    ObjectType,
    Operation,
    RecommendedCurve,
    ResultReason,
    RevocationReasonCode,
    State,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import (
    A,
    F,
    Kmip,
    U,
    alg,
    attrs,
    enum,
    key_block,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    length,
    live_call,
    mask,
    material,
    name_value,
    pair,
    reason_of,
    struct,
    template,
    text,
    uid_of,
)


# -- create, get, lifecycle ------------------------------------------------------------------
def test_create_is_pre_active_then_activate_get_revoke_destroy(kmip: Kmip) -> None:
    uid = kmip.create_aes(128, Name=name_value("kmip-aes-1"))
    key = kmip.key(uid)
    assert uid == f"{key.id}/1"
    assert (key.name, key.namespace, key.algorithm) == ("kmip-aes-1", "default", "AES_128_GCM")
    assert key.state == KeyState.PRE_ACTIVE and key.exportable
    with pytest.raises(KmipError) as wrong:
        kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid + "x"))
    assert reason_of(wrong.value) == "Object_Not_Found"   # Item_Not_Found in 1.x answers

    got = kmip.get(uid)
    raw = material(got).value
    assert isinstance(raw, bytes) and len(raw) == 16
    block = key_block(got)
    assert block.find(int(Tag.KEY_FORMAT_TYPE)).value == F.RAW  # type: ignore[union-attr]
    assert block.find(int(Tag.CRYPTOGRAPHIC_LENGTH)).value == 128  # type: ignore[union-attr]
    transparent = material(kmip.get(uid, F.TRANSPARENT_SYMMETRIC_KEY))
    assert transparent.find(int(Tag.KEY)).value == raw  # type: ignore[union-attr]
    with pytest.raises(KmipError) as unsupported:
        kmip.get(uid, F.PKCS_8)
    assert reason_of(unsupported.value) == "Key_Format_Type_Not_Supported"

    assert uid_of(kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))) == uid
    assert kmip.key(uid).state == KeyState.ACTIVE
    with pytest.raises(KmipError) as again:
        kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert reason_of(again.value) == "Wrong_Key_Lifecycle_State"
    with pytest.raises(KmipError) as active:
        kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert reason_of(active.value) == "Wrong_Key_Lifecycle_State"

    kmip.revoke(uid, RevocationReasonCode.CESSATION_OF_OPERATION)
    key = kmip.key(uid)
    assert key.state == KeyState.DEACTIVATED
    assert key.versions[0].state == VersionState.DEACTIVATED
    assert uid_of(kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))) == uid
    key = kmip.key(uid)
    assert key.state == KeyState.DESTROYED and key.versions[0].state == VersionState.DESTROYED
    with kmip.node.services.deps.reading() as conn:
        assert kmip.node.services.deps.keys.wrapped_material(conn, key.id, 1) is None
    with pytest.raises(KmipError) as gone:
        kmip.get(uid)
    assert reason_of(gone.value) in ("Object_Destroyed", "Wrong_Key_Lifecycle_State")


def test_kmip_name_taken_or_invalid_keeps_the_name_as_an_attribute(kmip: Kmip) -> None:
    from keykeeper.kmip.attributes import object_attributes

    first = kmip.create_aes(256, Name=name_value("shared-name"))
    assert kmip.key(first).name == "shared-name"
    for given in ("shared-name", "not a keykeeper name!"):
        uid = kmip.create_aes(256, Name=name_value(given))
        key = kmip.key(uid)
        assert key.name.startswith("kmip-") and len(key.name) == 21
        call = Call(kmip.node.services, kmip.ctx(), kmip.version, kmip.settings)
        names = [a.find(int(Tag.NAME_VALUE)).value  # type: ignore[union-attr]
                 for a in object_attributes(call, (key, 1, False)) if a.tag == Tag.NAME]
        assert given in names


def test_revoke_compromise_uses_the_occurrence_date(kmip: Kmip) -> None:
    uid = kmip.create_aes(256)
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    kmip.revoke(uid, RevocationReasonCode.KEY_COMPROMISE, when=6)   # 1970: before creation
    key = kmip.key(uid)
    assert key.state == KeyState.COMPROMISED
    assert key.versions[0].state == VersionState.COMPROMISED
    assert key.compromised_at == key.created_at
    assert key.compromise_reason is not None and "key compromise" in key.compromise_reason
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert kmip.key(uid).state == KeyState.DESTROYED_COMPROMISED


def test_create_with_past_activation_date_is_active_and_not_extractable_refused(
        kmip: Kmip) -> None:
    kmip = Kmip(kmip.node, kmip.version, extractable=False)
    uid = kmip.create_aes(256, Activation_Date=Item(int(Tag.ACTIVATION_DATE),
                                                    ItemType.DATE_TIME, 1_000_000))
    key = kmip.key(uid)
    assert key.state == KeyState.ACTIVE and not key.exportable
    with pytest.raises(KmipError) as refused:
        kmip.get(uid)
    assert reason_of(refused.value) == "Not_Extractable"
    future = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    later = kmip.create_aes(256, Activation_Date=Item(int(Tag.ACTIVATION_DATE),
                                                      ItemType.DATE_TIME, future))
    assert kmip.key(later).state == KeyState.PRE_ACTIVE
    assert kmip.key(later).activation_date == datetime(2030, 1, 1, tzinfo=UTC)


def test_algorithm_mapping_and_refusals(kmip: Kmip) -> None:
    wrap = kmip.create_aes(256, usage=int(U.WRAP_KEY | U.UNWRAP_KEY))
    assert kmip.key(wrap).algorithm == "AES_256_KWP"
    hmac = uid_of(kmip(Operation.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                       template(kmip.version, Cryptographic_Algorithm=alg(A.HMAC_SHA384),
                                Cryptographic_Length=length(384))))
    assert kmip.key(hmac).algorithm == "HMAC_SHA384"
    assert kmip.key(kmip.create_aes(192)).algorithm == "AES_192_GCM"  # the registry offers it
    for algorithm, bits in ((A.THREE_DES, 168), (A.AES, 160), (A.RSA, 3072)):
        with pytest.raises(KmipError) as refused:
            kmip(Operation.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                 template(kmip.version, Cryptographic_Algorithm=alg(algorithm),
                          Cryptographic_Length=length(bits)))
        assert reason_of(refused.value) == "Invalid_Field"
    # the namespace policy refuses RSA-2048 ("default" does not allow legacy RSA)
    with pytest.raises(KeykeeperError) as legacy:
        kmip(Operation.CREATE_KEY_PAIR,
             attrs(kmip.version, Tag.COMMON_TEMPLATE_ATTRIBUTE if kmip.version < (2, 0)
                   else Tag.COMMON_ATTRIBUTES, Cryptographic_Algorithm=alg(A.RSA),
                   Cryptographic_Length=length(2048)))
    assert reason_of(legacy.value) == "Invalid_Field"


def test_create_key_pair_ec_formats(kmip: Kmip) -> None:
    private_uid, public_uid = pair(kmip, A.EC, 384, int(U.SIGN), int(U.VERIFY))
    key = kmip.key(private_uid)
    assert private_uid == f"{key.id}/1" and public_uid == f"{key.id}/1/public"
    assert key.algorithm == "ECDSA_P384_SHA384"
    pkcs8 = material(kmip.get(private_uid)).value
    assert isinstance(pkcs8, bytes)
    private = serialization.load_der_private_key(pkcs8, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    spki = material(kmip.get(public_uid)).value
    assert spki == private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    t_private = material(kmip.get(private_uid, F.TRANSPARENT_EC_PRIVATE_KEY))
    assert t_private.find(int(Tag.D)).value == private.private_numbers().private_value  # type: ignore[union-attr]
    assert t_private.find(int(Tag.RECOMMENDED_CURVE)).value == RecommendedCurve.P_384  # type: ignore[union-attr]
    t_public = material(kmip.get(public_uid, F.TRANSPARENT_EC_PUBLIC_KEY))
    assert t_public.find(int(Tag.Q_STRING)).value == private.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    # the public key is served even when the key is not extractable
    strict = Kmip(kmip.node, kmip.version, extractable=False)
    p2, pub2 = pair(strict, A.EC, 256, int(U.SIGN), int(U.VERIFY))
    assert material(strict.get(pub2)).value
    with pytest.raises(KmipError) as refused:
        strict.get(p2)
    assert reason_of(refused.value) == "Not_Extractable"


# -- register + get in each format -----------------------------------------------------------
def test_key_pair_objects_have_their_own_states(kmip: Kmip) -> None:
    """The profiles' AKLC-M-2 flow: the public key stays Pre-Active when the private key
    is activated, and is destroyed alone; the private key only after its revocation."""
    from keykeeper.kmip.objects import resolve  # after kmip.ops (see objects_support)

    private_uid, public_uid = pair(kmip, A.EC, 256, int(U.SIGN), int(U.VERIFY))
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, private_uid))
    call = Call(kmip.node.services, kmip.ctx(), kmip.version, kmip.settings)
    assert resolve(call, private_uid).state == State.ACTIVE
    assert resolve(call, public_uid).state == State.PRE_ACTIVE
    with pytest.raises(KmipError) as active:
        kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, private_uid))
    assert reason_of(active.value) == "Wrong_Key_Lifecycle_State"
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, public_uid))
    assert resolve(call, public_uid).state == State.DESTROYED
    with pytest.raises(KmipError) as gone:
        kmip.get(public_uid)
    assert reason_of(gone.value) in ("Object_Destroyed", "Wrong_Key_Lifecycle_State")
    assert material(kmip.get(private_uid)).value      # the private key lives on
    kmip.revoke(private_uid, RevocationReasonCode.KEY_COMPROMISE)
    assert resolve(call, private_uid).state == State.COMPROMISED
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, private_uid))
    assert kmip.key(private_uid).state == KeyState.DESTROYED_COMPROMISED
    # private key first: its material is erased, the public key is served until destroyed
    p3, pub3 = pair(kmip, A.EC, 256, int(U.SIGN), int(U.VERIFY))
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, p3))
    assert resolve(call, p3).state == State.DESTROYED
    assert resolve(call, pub3).state == State.PRE_ACTIVE
    assert kmip.key(p3).state == KeyState.PRE_ACTIVE
    assert material(kmip.get(pub3)).value
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, pub3))
    assert kmip.key(p3).state == KeyState.DESTROYED
    for gone_uid in (p3, pub3):
        with pytest.raises(KmipError):
            kmip.get(gone_uid)
    # activating the public key of a pre-active pair leaves the private key pre-active
    p2, pub2 = pair(kmip, A.EC, 256, int(U.SIGN), int(U.VERIFY))
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, pub2))
    assert resolve(call, pub2).state == State.ACTIVE
    assert resolve(call, p2).state == State.PRE_ACTIVE
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, p2))
    assert resolve(call, p2).state == State.ACTIVE == resolve(call, pub2).state


# -- re-key ------------------------------------------------------------------------------------
def test_rekey_links_versions(kmip: Kmip) -> None:
    uid = kmip.create_aes(256)
    with pytest.raises(KmipError) as pre:
        kmip(Operation.RE_KEY, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert reason_of(pre.value) == "Wrong_Key_Lifecycle_State"
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    new = uid_of(kmip(Operation.RE_KEY, text(Tag.UNIQUE_IDENTIFIER, uid)))
    key = kmip.key(uid)
    assert new == f"{key.id}/2" and key.primary_version == 2
    assert material(kmip.get(new)).value != material(kmip.get(uid)).value
    with pytest.raises(KmipError) as replaced:
        kmip(Operation.RE_KEY, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert reason_of(replaced.value) == "Invalid_Field"
    from keykeeper.kmip.attributes import object_attributes
    from keykeeper.kmip.ttlv.enums import LinkType

    call = Call(kmip.node.services, kmip.ctx(), kmip.version, kmip.settings)

    def links(obj_uid: str) -> set[tuple[object, object]]:
        number = int(obj_uid.split("/")[1])
        out: set[tuple[object, object]] = set()
        for a in object_attributes(call, (key, number, False)):
            if a.tag != Tag.LINK:
                continue
            kind, target = a.find(int(Tag.LINK_TYPE)), a.find(int(Tag.LINKED_OBJECT_IDENTIFIER))
            assert kind is not None and target is not None
            out.add((kind.value, target.value))
        return out

    assert (int(LinkType.REPLACEMENT_OBJECT_LINK), new) in links(uid)
    assert (int(LinkType.REPLACED_OBJECT_LINK), uid) in links(new)


def test_rekey_keypair(kmip: Kmip) -> None:
    private_uid, _ = pair(kmip, A.EC, 256, int(U.SIGN), int(U.VERIFY))
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, private_uid))
    out = kmip(Operation.RE_KEY_KEY_PAIR, text(Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER, private_uid))
    key = kmip.key(private_uid)
    assert uid_of(out, Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER) == f"{key.id}/2"
    assert uid_of(out, Tag.PUBLIC_KEY_UNIQUE_IDENTIFIER) == f"{key.id}/2/public"


# -- check, usage allocation -----------------------------------------------------------------
def test_check_and_usage_allocation(kmip: Kmip) -> None:
    uid = kmip.create_aes(256)
    check = (text(Tag.UNIQUE_IDENTIFIER, uid), mask(int(U.ENCRYPT)))
    with pytest.raises(KmipError) as pre:
        kmip(Operation.CHECK, *check)
    assert reason_of(pre.value) == "Wrong_Key_Lifecycle_State"
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert uid_of(kmip(Operation.CHECK, *check)) == uid
    with pytest.raises(KmipError) as sign:
        kmip(Operation.CHECK, text(Tag.UNIQUE_IDENTIFIER, uid), mask(int(U.SIGN)))
    assert reason_of(sign.value) == "Incompatible_Cryptographic_Usage_Mask"
    assert uid_of(kmip(Operation.GET_USAGE_ALLOCATION, text(Tag.UNIQUE_IDENTIFIER, uid),
                       Item(int(Tag.USAGE_LIMITS_COUNT), ItemType.LONG_INTEGER, 10))) == uid
    with pytest.raises(KmipError) as too_many:
        kmip(Operation.CHECK, text(Tag.UNIQUE_IDENTIFIER, uid),
             Item(int(Tag.USAGE_LIMITS_COUNT), ItemType.LONG_INTEGER, 2 ** 33))
    assert reason_of(too_many.value) == "Permission_Denied"


# -- one store: KMIP and REST over the same server ----------------------------------------------


def test_live_kmip_key_is_usable_over_rest_and_rest_key_over_kmip(live) -> None:  # type: ignore[no-untyped-def]
    created = live_call(live, Operation.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                         template((2, 1), Cryptographic_Algorithm=alg(A.AES),
                                  Cryptographic_Length=length(256),
                                  Cryptographic_Usage_Mask=mask(int(U.ENCRYPT | U.DECRYPT))))
    assert created.ok, created.message
    uid = uid_of(created.payload)
    key_id = uid.split("/")[0]
    seen = live.rest.get(f"/v1/keys/{key_id}")
    assert seen.status_code == 200 and seen.json()["state"] == "pre-active"
    assert seen.json()["namespace"] == live.namespace
    assert live_call(live, Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid)).ok
    enc = live.rest.post(f"/v1/keys/{key_id}/encrypt",
                         json={"plaintext": base64.b64encode(b"one store").decode()})
    assert enc.status_code == 200, enc.text
    dec = live.rest.post(f"/v1/keys/{key_id}/decrypt",
                         json={"ciphertext": enc.json()["ciphertext"]})
    assert base64.b64decode(dec.json()["plaintext"]) == b"one store"

    made = live.rest.post("/v1/keys", json={"name": "rest-made-1", "namespace": live.namespace,
                                             "purpose": "encrypt", "exportable": True})
    assert made.status_code in (200, 201), made.text
    rest_id = made.json()["id"]
    got = live_call(live, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, f"{rest_id}/1"))
    assert got.ok, got.message
    assert got.payload is not None
    secret = material(got.payload).value
    assert isinstance(secret, bytes) and len(secret) == 32
    found = live_call(live, Operation.LOCATE, struct(Tag.ATTRIBUTES, name_value("rest-made-1")))
    assert found.ok and found.payload is not None, found.message
    assert [i.value for i in found.payload.find_all(int(Tag.UNIQUE_IDENTIFIER))] == [
        f"{rest_id}/1"]
    wrong = live_call(live, Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, f"{rest_id}/1"))
    assert not wrong.ok and wrong.reason == ResultReason.WRONG_KEY_LIFECYCLE_STATE


def test_live_dual_control_on_export_refuses_get(live) -> None:  # type: ignore[no-untyped-def]
    made = live.rest.post("/v1/keys", json={"name": "rest-made-2", "namespace": live.namespace,
                                             "purpose": "encrypt", "exportable": True})
    assert made.status_code in (200, 201), made.text
    uid = f"{made.json()['id']}/1"
    rule = {"operations": ["key.export"], "required": 2, "approver_roles": ["key-custodian"],
            "expiry_seconds": 3600}
    assert live.rest.put("/v1/policies/approval", json={"rules": [rule]}).status_code in (
        200, 202)
    try:
        got = live_call(live, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, uid))
        assert not got.ok and got.reason == ResultReason.PERMISSION_DENIED
        assert got.message is not None and "dual control" in got.message
    finally:
        live.rest.put("/v1/policies/approval", json={"rules": []})
    assert live_call(live, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, uid)).ok


def test_an_enumeration_value_newer_than_the_request_is_no_attribute(node: Node) -> None:  # noqa: F811
    """Ed25519 is a Cryptographic Algorithm value of KMIP 2.0: to a 1.4 request the key has
    no Cryptographic Algorithm (Get Attributes, Get Attribute List, Locate by it); to 2.1
    it has (attributes.py defined_in)."""
    new, old = Kmip(node, (2, 1)), Kmip(node, (1, 4))
    private_uid, _ = pair(new, A.ED25519, 256, int(U.SIGN), int(U.VERIFY))
    uid = text(Tag.UNIQUE_IDENTIFIER, private_uid)
    listed = old(Operation.GET_ATTRIBUTE_LIST, uid)
    names = {str(i.value) for i in listed.find_all(int(Tag.ATTRIBUTE_NAME))}
    assert "Cryptographic Length" in names and "Cryptographic Algorithm" not in names
    got = old(Operation.GET_ATTRIBUTES, uid, text(Tag.ATTRIBUTE_NAME, "Cryptographic Algorithm"))
    assert got.find_all(int(Tag.ATTRIBUTE)) == []
    found = new(Operation.GET_ATTRIBUTES, uid)
    algorithms = [i for a in found.find_all(int(Tag.ATTRIBUTES))
                  for i in a.children if i.tag == Tag.CRYPTOGRAPHIC_ALGORITHM]
    assert [i.value for i in algorithms] == [int(A.ED25519)]
    by_algorithm = attrs((1, 4), Tag.TEMPLATE_ATTRIBUTE, Cryptographic_Algorithm=alg(A.ED25519))
    assert private_uid not in {str(i.value) for i in old(Operation.LOCATE, by_algorithm)
                               .find_all(int(Tag.UNIQUE_IDENTIFIER))}
