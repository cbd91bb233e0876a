"""KMIP odds and ends: Interop, Log and Hash, the Quantum Safe
attribute on Create, and the server-decided attributes Lease Time
(KEYKEEPER_KMIP_LEASE_TIME), Fresh and Protection Storage Mask.

Live: through the real KMIP listener (tests/kmip/conftest.py). In-process: the handlers
over a real node (tests/kmip/objects_support.py), for settings a live server would need
restarting for.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import pytest

from keykeeper.crypto.registry import ALGORITHMS
from keykeeper.errors import InvalidArgument, KeykeeperError
from keykeeper.kmip.call import KmipError, KmipSettings
from keykeeper.kmip.messages import BatchResult, batch_item, parse_response, request_message
from keykeeper.kmip.ops.log import MAX_MESSAGE, clean_message
from keykeeper.kmip.server import kmip_settings_from_env
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    InteropFunction,
    KeyFormatType,
    ObjectType,
    Operation,
    ProtectionStorageMask,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.conftest import KmipServer
from tests.kmip.objects_support import (
    Kmip,
    alg,
    enum,
    length,
    mask,
    name_value,
    reason_of,
    template,
    text,
    uid_of,
)

A, U = CryptographicAlgorithm, CryptographicUsageMask


def _one(server: KmipServer, operation: int, payload: list[Item],
         version: tuple[int, int] = (2, 1)) -> BatchResult:
    answer = parse_response(server.call(request_message([batch_item(operation, payload)],
                                                        version=version)))
    assert len(answer.items) == 1
    return answer.items[0]


def _create_aes(server: KmipServer, bits: int, version: tuple[int, int] = (2, 1),
                **extra: Item) -> BatchResult:
    return _one(server, Operation.CREATE, [
        enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
        template(version, Cryptographic_Algorithm=alg(A.AES), Cryptographic_Length=length(bits),
                 Cryptographic_Usage_Mask=mask(int(U.ENCRYPT | U.DECRYPT)), **extra)],
        version)


def _uid(result: BatchResult) -> str:
    assert result.ok, (result.reason, result.message)
    assert result.payload is not None
    return uid_of(result.payload)


def _attributes(server: KmipServer, uid: str) -> dict[int, Item]:
    """Get Attributes (2.1, all of them): value items by tag."""
    got = _one(server, Operation.GET_ATTRIBUTES, [text(Tag.UNIQUE_IDENTIFIER, uid)])
    assert got.ok and got.payload is not None, (got.reason, got.message)
    attrs = got.payload.find(Tag.ATTRIBUTES)
    assert attrs is not None
    return {c.tag: c for c in attrs.children}


def _quantum_safe(value: bool) -> Item:
    return Item(int(Tag.QUANTUM_SAFE), ItemType.BOOLEAN, value)


# -- Interop --------------------------------------------------------------------------------
@pytest.mark.parametrize("function", list(InteropFunction))
def test_interop_answers_success_with_an_empty_payload(kmip_server: KmipServer,
                                                       function: InteropFunction) -> None:
    got = _one(kmip_server, Operation.INTEROP, [
        enum(Tag.INTEROP_FUNCTION, function), text(Tag.INTEROP_IDENTIFIER, "BL-M-1-21")])
    assert got.status == ResultStatus.SUCCESS
    assert got.payload is not None and got.payload.children == []


@pytest.mark.parametrize("payload", [
    [text(Tag.INTEROP_IDENTIFIER, "BL-M-1-21")],
    [enum(Tag.INTEROP_FUNCTION, InteropFunction.BEGIN)],
    [enum(Tag.INTEROP_FUNCTION, 99), text(Tag.INTEROP_IDENTIFIER, "x")],
    [enum(Tag.INTEROP_FUNCTION, InteropFunction.END), text(Tag.INTEROP_IDENTIFIER, "")],
    [enum(Tag.INTEROP_FUNCTION, InteropFunction.END), text(Tag.INTEROP_IDENTIFIER, "x" * 257)],
], ids=["no-function", "no-identifier", "unknown-function", "empty-identifier", "too-long"])
def test_interop_refuses_a_malformed_request(kmip_server: KmipServer,
                                             payload: list[Item]) -> None:
    got = _one(kmip_server, Operation.INTEROP, payload)
    assert (got.status, got.reason) == (ResultStatus.OPERATION_FAILED,
                                        ResultReason.INVALID_FIELD)


def test_interop_is_a_kmip_2_operation(kmip_server: KmipServer) -> None:
    got = _one(kmip_server, Operation.INTEROP, [
        enum(Tag.INTEROP_FUNCTION, InteropFunction.BEGIN), text(Tag.INTEROP_IDENTIFIER, "x")],
        version=(1, 4))
    assert got.reason == ResultReason.OPERATION_NOT_SUPPORTED


# -- Log ------------------------------------------------------------------------------------
def test_log_records_the_message_in_the_audit_trail(kmip_server: KmipServer) -> None:
    marker = "kmip log test 5f3a9c"
    got = _one(kmip_server, Operation.LOG, [text(Tag.LOG_MESSAGE, marker + "\nforged line")])
    assert got.status == ResultStatus.SUCCESS
    assert got.payload is not None and got.payload.children == []
    details: list[str] = []
    for _ in range(50):  # the audit search reads what the sinks have written
        r = kmip_server.rest.get("/v1/audit", params={"operation": "kmip.log"})
        assert r.status_code == 200, r.text
        details = [rec.get("detail", "") for rec in r.json()["records"]]
        if f"{marker}\ufffdforged line" in details:
            break
        time.sleep(0.1)
    assert f"{marker}\ufffdforged line" in details


def test_log_needs_a_message(kmip_server: KmipServer) -> None:
    for payload in ([], [text(Tag.LOG_MESSAGE, "")]):
        got = _one(kmip_server, Operation.LOG, payload)
        assert got.reason == ResultReason.INVALID_FIELD


def test_clean_message_replaces_control_characters_and_caps_the_length() -> None:
    assert clean_message("a\r\nb\x1b[31mc\u202ed") == "a\ufffd\ufffdb\ufffd[31mc\ufffdd"
    long = clean_message("é" * (MAX_MESSAGE + 10))
    assert len(long) == MAX_MESSAGE and long.endswith("...")
    assert clean_message("x" * MAX_MESSAGE) == "x" * MAX_MESSAGE


# -- Quantum Safe ---------------------------------------------------------------------------
def test_quantum_safe_classification_follows_the_algorithm_table() -> None:
    safe = {name for name, spec in ALGORITHMS.items() if spec.quantum_safe}
    assert safe == {"AES_256_GCM", "CHACHA20_POLY1305", "AES_256_KWP", "HMAC_SHA256",
                    "HMAC_SHA384", "HMAC_SHA512", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87",
                    "ML_KEM_768", "ML_KEM_1024"}


@pytest.mark.parametrize("version", [(2, 1), (2, 0)])
def test_create_quantum_safe_refuses_aes_128(kmip_server: KmipServer,
                                             version: tuple[int, int]) -> None:
    got = _create_aes(kmip_server, 128, version, Quantum_Safe=_quantum_safe(True))
    assert (got.status, got.reason, got.message) == (
        ResultStatus.OPERATION_FAILED, ResultReason.GENERAL_FAILURE, "NOT_SAFE")


def test_create_quantum_safe_takes_aes_256(kmip_server: KmipServer) -> None:
    uid = _uid(_create_aes(kmip_server, 256, Quantum_Safe=_quantum_safe(True)))
    assert _attributes(kmip_server, uid)[Tag.QUANTUM_SAFE].value is True
    # Quantum Safe false asks for nothing: AES-128 is fine.
    _uid(_create_aes(kmip_server, 128, Quantum_Safe=_quantum_safe(False)))


def test_create_key_pair_quantum_safe_refuses_ecdsa(node: Node) -> None:  # noqa: F811
    kmip = Kmip(node, (2, 1))
    common = template((2, 1), Cryptographic_Algorithm=alg(A.ECDSA),
                      Cryptographic_Length=length(256), Quantum_Safe=_quantum_safe(True))
    common = Item(int(Tag.COMMON_ATTRIBUTES), ItemType.STRUCTURE, common.children)
    private = Item(int(Tag.PRIVATE_KEY_ATTRIBUTES), ItemType.STRUCTURE,
                   [mask(int(U.SIGN))])
    public = Item(int(Tag.PUBLIC_KEY_ATTRIBUTES), ItemType.STRUCTURE, [mask(int(U.VERIFY))])
    with pytest.raises(KmipError) as refused:
        kmip(Operation.CREATE_KEY_PAIR, common, private, public)
    assert (reason_of(refused.value), refused.value.detail) == ("General_Failure", "NOT_SAFE")


# -- Lease Time, Fresh, Protection Storage Mask -------------------------------------------
def test_lease_time_setting_from_the_environment() -> None:
    assert kmip_settings_from_env({}).lease_time == 3600
    assert kmip_settings_from_env({"KEYKEEPER_KMIP_LEASE_TIME": "60"}).lease_time == 60
    assert kmip_settings_from_env({"KEYKEEPER_KMIP_LEASE_TIME": "0"}).lease_time == 0
    for bad in ("-1", "1h", "31536001", "\u00b2", "1.5"):
        with pytest.raises(InvalidArgument, match="KEYKEEPER_KMIP_LEASE_TIME"):
            kmip_settings_from_env({"KEYKEEPER_KMIP_LEASE_TIME": bad})


def test_get_attributes_has_lease_time_and_protection_storage_mask(
        kmip_server: KmipServer) -> None:
    uid = _uid(_create_aes(kmip_server, 256))
    attrs = _attributes(kmip_server, uid)
    lease = attrs[Tag.LEASE_TIME]
    assert (lease.type, lease.value) == (ItemType.INTERVAL, 3600)
    storage = attrs[Tag.PROTECTION_STORAGE_MASK]
    assert (storage.type, storage.value) == (ItemType.INTEGER, ProtectionStorageMask.SOFTWARE)
    listed = _one(kmip_server, Operation.GET_ATTRIBUTE_LIST, [text(Tag.UNIQUE_IDENTIFIER, uid)])
    assert listed.payload is not None
    refs = {c.value for c in listed.payload.find_all(Tag.ATTRIBUTE_REFERENCE)}
    assert {Tag.LEASE_TIME, Tag.PROTECTION_STORAGE_MASK} <= refs


def test_kmip_1_4_names_lease_time_but_not_protection_storage_mask(
        kmip_server: KmipServer) -> None:
    uid = _uid(_create_aes(kmip_server, 256, (1, 4)))
    listed = _one(kmip_server, Operation.GET_ATTRIBUTE_LIST,
                  [text(Tag.UNIQUE_IDENTIFIER, uid)], (1, 4))
    assert listed.payload is not None
    names = {c.value for c in listed.payload.find_all(Tag.ATTRIBUTE_NAME)}
    assert "Lease Time" in names
    assert not {"Protection Storage Mask", "Protection Storage Masks"} & names


def test_lease_time_zero_gives_no_lease_time(node: Node) -> None:  # noqa: F811
    kmip = Kmip(node, (2, 1))
    uid = kmip.create_aes(256)
    names = {c.value for c in kmip(Operation.GET_ATTRIBUTE_LIST,
                                   text(Tag.UNIQUE_IDENTIFIER, uid)).children}
    assert Tag.LEASE_TIME in names
    kmip.settings = KmipSettings(namespace="default", extractable_default=True, lease_time=0)
    names = {c.value for c in kmip(Operation.GET_ATTRIBUTE_LIST,
                                   text(Tag.UNIQUE_IDENTIFIER, uid)).children}
    assert Tag.LEASE_TIME not in names


def test_get_makes_the_object_no_longer_fresh(kmip_server: KmipServer) -> None:
    uid = _uid(_create_aes(kmip_server, 256))
    assert _attributes(kmip_server, uid)[Tag.FRESH].value is True
    assert _one(kmip_server, Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, uid)]).ok
    assert _attributes(kmip_server, uid)[Tag.FRESH].value is False
    assert _one(kmip_server, Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, uid)]).ok
    assert _attributes(kmip_server, uid)[Tag.FRESH].value is False


# -- Get answers in the registered Key Format Type ------------------------------------------
def test_get_without_a_format_answers_in_the_registered_one(kmip_server: KmipServer) -> None:
    raw = bytes(range(16))
    F = KeyFormatType
    block = Item.structure(int(Tag.KEY_BLOCK), [
        enum(Tag.KEY_FORMAT_TYPE, F.TRANSPARENT_SYMMETRIC_KEY),
        Item.structure(int(Tag.KEY_VALUE), [Item.structure(int(Tag.KEY_MATERIAL), [
            Item(int(Tag.KEY), ItemType.BYTE_STRING, raw)])]),
        alg(A.AES), length(128)])
    uid = _uid(_one(kmip_server, Operation.REGISTER, [
        enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
        template((2, 1), Cryptographic_Usage_Mask=mask(int(U.ENCRYPT | U.DECRYPT))),
        Item.structure(int(Tag.SYMMETRIC_KEY), [block])]))

    def get(*fmt: Item) -> Item:
        got = _one(kmip_server, Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, uid), *fmt])
        assert got.ok and got.payload is not None, (got.reason, got.message)
        managed = got.payload.find(Tag.SYMMETRIC_KEY)
        assert managed is not None
        found = managed.find(Tag.KEY_BLOCK)
        assert found is not None
        return found

    plain = get()
    assert plain.find(Tag.KEY_FORMAT_TYPE).value == F.TRANSPARENT_SYMMETRIC_KEY  # type: ignore[union-attr]
    assert plain.find(Tag.KEY_VALUE).find(Tag.KEY_MATERIAL).find(Tag.KEY).value == raw  # type: ignore[union-attr]
    asked = get(enum(Tag.KEY_FORMAT_TYPE, F.RAW))
    assert asked.find(Tag.KEY_FORMAT_TYPE).value == F.RAW  # type: ignore[union-attr]
    assert _attributes(kmip_server, uid)[Tag.KEY_FORMAT_TYPE].value \
        == F.TRANSPARENT_SYMMETRIC_KEY
    # A created key has no registered format: Raw, as before.
    created = _uid(_create_aes(kmip_server, 128))
    got = _one(kmip_server, Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, created)])
    assert got.payload is not None
    assert got.payload.find(Tag.SYMMETRIC_KEY).find(Tag.KEY_BLOCK).find(  # type: ignore[union-attr]
        Tag.KEY_FORMAT_TYPE).value == F.RAW


# -- Add Attribute: a Name the object already has -----------------------------------------
@pytest.mark.parametrize("version", [(2, 1), (1, 4)])
def test_add_attribute_refuses_a_name_the_object_has(kmip_server: KmipServer,
                                                     version: tuple[int, int]) -> None:
    label = f"misc-name-{version[0]}{version[1]}-{time.time_ns()}"
    name = name_value(label)
    uid = _uid(_create_aes(kmip_server, 256, version, Name=name))
    if version >= (2, 0):
        payload = [text(Tag.UNIQUE_IDENTIFIER, uid), Item.structure(int(Tag.NEW_ATTRIBUTE),
                                                                    [name])]
    else:
        payload = [text(Tag.UNIQUE_IDENTIFIER, uid), Item.structure(int(Tag.ATTRIBUTE), [
            text(Tag.ATTRIBUTE_NAME, "Name"),
            Item(int(Tag.ATTRIBUTE_VALUE), ItemType.STRUCTURE, name.children)])]
    got = _one(kmip_server, Operation.ADD_ATTRIBUTE, payload, version)
    assert got.reason == (ResultReason.NON_UNIQUE_NAME_ATTRIBUTE if version >= (2, 0)
                          else ResultReason.INVALID_FIELD)
    other = name_value(label + "-2")
    payload[1] = (Item.structure(int(Tag.NEW_ATTRIBUTE), [other]) if version >= (2, 0)
                  else Item.structure(int(Tag.ATTRIBUTE), [
                      text(Tag.ATTRIBUTE_NAME, "Name"),
                      Item(int(Tag.ATTRIBUTE_VALUE), ItemType.STRUCTURE, other.children)]))
    assert _one(kmip_server, Operation.ADD_ATTRIBUTE, payload, version).ok


def test_setting_quantum_safe_later_follows_the_same_rule(kmip_server: KmipServer) -> None:
    weak = _uid(_create_aes(kmip_server, 128))
    strong = _uid(_create_aes(kmip_server, 256))

    def set_qs(uid: str, value: bool) -> BatchResult:
        return _one(kmip_server, Operation.SET_ATTRIBUTE, [
            text(Tag.UNIQUE_IDENTIFIER, uid),
            Item.structure(int(Tag.NEW_ATTRIBUTE), [_quantum_safe(value)])])

    refused = set_qs(weak, True)
    assert (refused.reason, refused.message) == (ResultReason.GENERAL_FAILURE, "NOT_SAFE")
    assert Tag.QUANTUM_SAFE not in _attributes(kmip_server, weak)
    assert set_qs(weak, False).ok
    assert set_qs(strong, True).ok
    assert _attributes(kmip_server, strong)[Tag.QUANTUM_SAFE].value is True


# -- Hash -----------------------------------------------------------------------------------
def _hash(server: KmipServer, algorithm: int | None, data: bytes,
          version: tuple[int, int] = (2, 1), *extra: Item) -> BatchResult:
    params = [] if algorithm is None else [Item.structure(
        int(Tag.CRYPTOGRAPHIC_PARAMETERS), [enum(Tag.HASHING_ALGORITHM, algorithm)])]
    return _one(server, Operation.HASH,
                [*params, Item(int(Tag.DATA), ItemType.BYTE_STRING, data), *extra], version)


@pytest.mark.parametrize(("algorithm", "name"), [
    (HashingAlgorithm.SHA_256, "sha256"), (HashingAlgorithm.SHA_384, "sha384"),
    (HashingAlgorithm.SHA_512, "sha512"), (HashingAlgorithm.SHA3_256, "sha3_256")])
@pytest.mark.parametrize("version", [(1, 4), (2, 1)], ids=["kmip1.4", "kmip2.1"])
def test_hash_answers_the_digest(kmip_server: KmipServer, algorithm: HashingAlgorithm,
                                 name: str, version: tuple[int, int]) -> None:
    got = _hash(kmip_server, algorithm, b"abc", version)
    assert got.ok and got.payload is not None, (got.reason, got.message)
    assert [c.tag for c in got.payload.children] == [Tag.DATA]
    assert got.payload.children[0].value == hashlib.new(name, b"abc").digest()
    if algorithm == HashingAlgorithm.SHA_256:  # FIPS 180-2 Appendix B.1
        assert got.payload.children[0].value == bytes.fromhex(
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


@pytest.mark.parametrize("algorithm", [HashingAlgorithm.MD5, HashingAlgorithm.SHA_1,
                                       HashingAlgorithm.RIPEMD_160, None],
                         ids=["md5", "sha1", "ripemd160", "none"])
def test_hash_refuses_weak_or_missing_algorithms(kmip_server: KmipServer,
                                                 algorithm: HashingAlgorithm | None) -> None:
    got = _hash(kmip_server, algorithm, b"abc")
    assert (got.status, got.reason) == (ResultStatus.OPERATION_FAILED,
                                        ResultReason.INVALID_FIELD)


def test_hash_refuses_multi_part_and_oversized_data(kmip_server: KmipServer) -> None:
    streaming = _hash(kmip_server, HashingAlgorithm.SHA_256, b"abc", (2, 1),
                      Item(int(Tag.INIT_INDICATOR), ItemType.BOOLEAN, True))
    assert streaming.reason == ResultReason.OPERATION_NOT_SUPPORTED
    big = _hash(kmip_server, HashingAlgorithm.SHA_256, b"\0" * (64 * 1024 + 1))
    assert big.reason == ResultReason.INVALID_FIELD


def test_hash_is_a_kmip_1_2_operation(kmip_server: KmipServer) -> None:
    got = _hash(kmip_server, HashingAlgorithm.SHA_256, b"abc", (1, 1))
    assert got.reason == ResultReason.OPERATION_NOT_SUPPORTED


# -- a key of the wrong purpose -------------------------------------------------------------
@pytest.mark.parametrize(("version", "reason"), [
    ((2, 1), ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK),
    ((1, 4), ResultReason.PERMISSION_DENIED)], ids=["kmip2.1", "kmip1.4"])
def test_a_key_of_another_purpose_is_an_incompatible_usage_mask(
        kmip_server: KmipServer, version: tuple[int, int], reason: ResultReason) -> None:
    r = kmip_server.rest.post("/v1/keys", json={
        "name": "purpose-" + secrets.token_hex(6), "namespace": kmip_server.namespace,
        "purpose": "encrypt", "algorithm": "AES_256_GCM"})
    assert r.status_code in (200, 201), r.text
    key_id = r.json()["id"]
    got = _one(kmip_server, Operation.MAC, [
        text(Tag.UNIQUE_IDENTIFIER, f"{key_id}/1"),
        Item.structure(int(Tag.CRYPTOGRAPHIC_PARAMETERS),
                       [alg(A.HMAC_SHA256)]),
        Item(int(Tag.DATA), ItemType.BYTE_STRING, b"m")], version)
    assert (got.status, got.reason) == (ResultStatus.OPERATION_FAILED, reason)
    assert got.message is not None and "purpose 'mac'" in got.message
    # REST is unchanged: 409 failed_precondition.
    rest = kmip_server.rest.post(f"/v1/keys/{key_id}/mac", json={"message": "bQ=="})
    assert rest.status_code == 409, rest.text
    assert rest.json()["code"] == "failed_precondition"


def test_create_in_a_missing_kmip_namespace_says_how_to_make_it(node: Node) -> None:  # noqa: F811
    """Item_Not_Found naming the setting and the command, not only the namespace."""
    kmip = Kmip(node, (2, 1))
    kmip.settings = KmipSettings(namespace="no-such-ns", extractable_default=True)
    with pytest.raises(KeykeeperError) as refused:
        kmip.create_aes(256)
    assert refused.value.kmip_reason == "Item_Not_Found"
    assert str(refused.value) == (
        "namespace 'no-such-ns' not found: it is the KMIP namespace (KEYKEEPER_KMIP_NAMESPACE);"
        " create it with 'keykeeper namespace create no-such-ns'")
