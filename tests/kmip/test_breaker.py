"""Adversarial findings against the KMIP server (issue 5), one reproduction each.

Every test here states what the server SHOULD do and is marked
``xfail(strict=True, reason="finding N")`` while it does not: the fix turns it green (then
remove the mark). The findings, with severity and what happened, are written up in
/tmp/kk/kmip-breaker.md. Real server subprocesses only (tests/kmip/conftest.py).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

import keykeeper.kmip.ops  # noqa: F401  (the dispatch table first)
from keykeeper.kmip.messages import BatchResult, batch_item, parse_response, request_message
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import DEFAULT_MAX_SIZE, decode, encode, message_length
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    RevocationReasonCode,
)
from keykeeper.kmip.ttlv.json import from_json, to_json
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer, _read_exact, launch
from tests.kmip.crypto_helpers import b, call, enum, params
from tests.kmip.kmip_attr_helpers import principal_cert, uid_item
from tests.tls.conftest import Pki

T = ItemType
GENERAL_FAILURE = int(ResultReason.GENERAL_FAILURE)


def _key(kmip: KmipServer, purpose: str = "encrypt", algorithm: str = "AES_256_GCM") -> str:
    r = kmip.rest.post("/v1/keys", json={"name": "brk-" + secrets.token_hex(6),
                                         "namespace": kmip.namespace, "purpose": purpose,
                                         "algorithm": algorithm})
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


def _refused_cleanly(result: BatchResult) -> None:
    """A failed item whose reason is a client error, not the General_Failure of a bug."""
    assert not result.ok
    assert result.reason != GENERAL_FAILURE, result.message


def _audit_count(kmip: KmipServer, operation: str) -> int:
    r = kmip.rest.get("/v1/audit", params={"operation": operation, "page_size": 1000})
    assert r.status_code == 200, r.text
    return len(r.json()["records"])


# -- finding 1: Get Usage Allocation materialises one object per unit ----------------------
def _rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024


def test_usage_allocation_memory_does_not_grow_with_the_count(
        kmip_pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Get Usage Allocation of N uses (any principal with ``encrypt`` on an AES-GCM key)
    makes service/usage.py hold N deque entries: ~8 bytes and ~0.1 us each. 20 million
    costs ~150 MiB here; the AES-GCM limit 2^32 (a Long Integer 2^63-1 asks for it) made the
    server grow to 19 GB before it was killed. A count is a number, not a list."""
    with launch(kmip_pki, tmp_path_factory) as (server, kmip):
        assert server.proc is not None
        uid = _key(kmip) + "/1"
        call(kmip, Operation.DISCOVER_VERSIONS, None)  # connection and code paths warm
        before = _rss_mib(server.proc.pid)
        result = call(kmip, Operation.GET_USAGE_ALLOCATION, uid,
                      Item(Tag.USAGE_LIMITS_COUNT, T.LONG_INTEGER, 20_000_000))
        grown = _rss_mib(server.proc.pid) - before
        assert result.ok or result.reason != GENERAL_FAILURE
        assert grown < 48, f"the server grew by {grown} MiB for one Get Usage Allocation"


# -- finding 2: response amplification ------------------------------------------------------
def test_small_batch_cannot_make_a_response_beyond_the_message_limit(
        kmip_server: KmipServer) -> None:
    """400 RNG Retrieve items of 64 KiB (a 20 KB request) must not make the server build a
    26 MB answer: no KMIP client, keykeeper's own codec included (DEFAULT_MAX_SIZE 16 MiB),
    can even read it, and a 1 MiB request would make ~1.4 GB."""
    items = [batch_item(Operation.RNG_RETRIEVE, [Item(Tag.DATA_LENGTH, T.INTEGER, 65536)])
             for _ in range(400)]
    data = encode(request_message(items))
    assert len(data) < 32 * 1024
    sock = kmip_server.connect(timeout=60)
    try:
        sock.sendall(data)
        header = _read_exact(sock, 8)
        total = message_length(header, max_size=1 << 40)
    finally:
        sock.close()
    assert total <= DEFAULT_MAX_SIZE, f"a {len(data)}-byte request got a {total}-byte answer"


# -- finding 3: connection slots taken before TLS -------------------------------------------
def test_unauthenticated_sockets_do_not_lock_out_clients(
        kmip_pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> None:
    """256 TCP connections that never start TLS (no certificate needed) take every
    connection slot: a client with a valid certificate is closed at once, for 30 s per
    wave. It should still be served."""
    with launch(kmip_pki, tmp_path_factory) as (_, kmip), contextlib.ExitStack() as stack:
        for _ in range(256):
            stack.enter_context(socket.create_connection((kmip.host, kmip.port)))
        time.sleep(0.5)
        request = request_message([batch_item(Operation.DISCOVER_VERSIONS)])
        sock = kmip.connect(timeout=10)
        try:
            answer = parse_response(decode(kmip.exchange(sock, encode(request))))
        finally:
            sock.close()
        assert [i.ok for i in answer.items] == [True]


# -- finding 4: HTTP 500 on POST /kmip -------------------------------------------------------
def test_json_integer_of_5000_digits_is_invalid_message(kmip_server: KmipServer) -> None:
    body = to_json(request_message([batch_item(Operation.DISCOVER_VERSIONS)]))
    text = body.decode() if isinstance(body, bytes) else body
    assert '"value":2' in text
    text = text.replace('"value":2', '"value":' + "9" * 5000, 1)
    r = kmip_server.rest.post("/kmip", content=text,
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    (result,) = parse_response(from_json(r.content)).items
    assert result.reason == int(ResultReason.INVALID_MESSAGE)


# -- findings 5, 6: Date-Time extremes are internal errors -----------------------------------
@pytest.mark.parametrize("when", [2**63 - 1, -2**63, 253402300800, -62135596801])
def test_revoke_with_out_of_range_compromise_date(kmip_server: KmipServer,
                                                  when: int) -> None:
    uid = _key(kmip_server) + "/1"
    result = call(kmip_server, Operation.REVOKE, uid, Item.structure(
        Tag.REVOCATION_REASON, [enum(Tag.REVOCATION_REASON_CODE,
                                     RevocationReasonCode.KEY_COMPROMISE)]),
        Item(Tag.COMPROMISE_OCCURRENCE_DATE, T.DATE_TIME, when))
    _refused_cleanly(result)


@pytest.mark.parametrize("op", [Operation.SET_ATTRIBUTE, Operation.ADD_ATTRIBUTE])
def test_out_of_range_deactivation_date_attribute(kmip_server: KmipServer,
                                                  op: Operation) -> None:
    uid = _key(kmip_server) + "/1"
    result = call(kmip_server, op, uid, Item.structure(
        Tag.NEW_ATTRIBUTE, [Item(Tag.DEACTIVATION_DATE, T.DATE_TIME, 2**63 - 1)]))
    _refused_cleanly(result)


# -- finding 7: huge custom Big Integer attribute ------------------------------------------
@pytest.mark.parametrize("op", [Operation.ADD_ATTRIBUTE, Operation.SET_ATTRIBUTE])
def test_custom_big_integer_attribute_beyond_4300_digits(kmip_server: KmipServer,
                                                         op: Operation) -> None:
    """A 20,000-bit Big Integer custom attribute (2.6 KB on the wire) fails in
    attributes_store.encode_object (json.dumps: int-to-str digit limit): General_Failure."""
    uid = _key(kmip_server) + "/1"
    value = Item.structure(Tag.ATTRIBUTE, [
        Item(Tag.VENDOR_IDENTIFICATION, T.TEXT_STRING, "x"),
        Item(Tag.ATTRIBUTE_NAME, T.TEXT_STRING, "x-big"),
        Item(Tag.ATTRIBUTE_VALUE, T.BIG_INTEGER, 1 << 20000)])
    result = call(kmip_server, op, uid, Item.structure(Tag.NEW_ATTRIBUTE, [value]))
    _refused_cleanly(result)


# -- findings 8, 18: Register of Transparent RSA public keys --------------------------------
def _register_rsa_public(kmip: KmipServer, modulus: int) -> BatchResult:
    block = Item.structure(Tag.KEY_BLOCK, [
        enum(Tag.KEY_FORMAT_TYPE, KeyFormatType.TRANSPARENT_RSA_PUBLIC_KEY),
        Item.structure(Tag.KEY_VALUE, [Item.structure(Tag.KEY_MATERIAL, [
            Item(Tag.MODULUS, T.BIG_INTEGER, modulus),
            Item(Tag.PUBLIC_EXPONENT, T.BIG_INTEGER, 65537)])]),
        enum(Tag.CRYPTOGRAPHIC_ALGORITHM, CryptographicAlgorithm.RSA),
        Item(Tag.CRYPTOGRAPHIC_LENGTH, T.INTEGER, 2048)])
    return call(kmip, Operation.REGISTER, None,
                enum(Tag.OBJECT_TYPE, ObjectType.PUBLIC_KEY),
                Item.structure(Tag.ATTRIBUTES, [
                    Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, T.INTEGER,
                         int(CryptographicUsageMask.VERIFY))]),
                Item.structure(Tag.PUBLIC_KEY, [block]))


def test_register_rsa_public_key_with_negative_modulus(kmip_server: KmipServer) -> None:
    """keyblock._transparent: OverflowError (negative int to unsigned): General_Failure."""
    _refused_cleanly(_register_rsa_public(kmip_server, -5))


def test_register_rsa_public_key_with_even_modulus(kmip_server: KmipServer) -> None:
    """An even 2048-bit modulus (2^2047) is no RSA modulus; it is stored as a key."""
    _refused_cleanly(_register_rsa_public(kmip_server, 1 << 2047))


# -- finding 17: Cryptographic Length contradicting the material -----------------------------
def test_register_length_must_match_the_material(kmip_server: KmipServer) -> None:
    """16 bytes of AES key with Cryptographic Length 256 is registered as AES-128 without a
    word (KMIP 2.1 §4.12: the length is the key's; a contradiction is Invalid_Field)."""
    block = Item.structure(Tag.KEY_BLOCK, [
        enum(Tag.KEY_FORMAT_TYPE, KeyFormatType.RAW),
        Item.structure(Tag.KEY_VALUE, [b(Tag.KEY_MATERIAL, bytes(range(16)))]),
        enum(Tag.CRYPTOGRAPHIC_ALGORITHM, CryptographicAlgorithm.AES),
        Item(Tag.CRYPTOGRAPHIC_LENGTH, T.INTEGER, 256)])
    result = call(kmip_server, Operation.REGISTER, None,
                  enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                  Item.structure(Tag.ATTRIBUTES, [Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, T.INTEGER,
                                                       12)]),
                  Item.structure(Tag.SYMMETRIC_KEY, [block]))
    assert not result.ok
    assert result.reason == int(ResultReason.INVALID_FIELD)


# -- finding 9: RSA-OAEP with SHA-3 ----------------------------------------------------------
@pytest.mark.parametrize("digest", [HashingAlgorithm.SHA3_256, HashingAlgorithm.SHA3_512])
def test_rsa_oaep_with_sha3_is_refused_not_an_internal_error(kmip_server: KmipServer,
                                                             digest: int) -> None:
    uid = _key(kmip_server, "encrypt", "RSA_OAEP_3072_SHA256") + "/1/public"
    result = call(kmip_server, Operation.ENCRYPT, uid,
                  params(padding=PaddingMethod.OAEP, hash=digest), b(Tag.DATA, b"x"))
    _refused_cleanly(result)


# -- finding 10: Re-Key of an asymmetric key --------------------------------------------------
@pytest.mark.parametrize("half", ["/1/public", "/1"])
def test_rekey_refuses_asymmetric_objects(kmip_server: KmipServer, half: str) -> None:
    """Re-Key (KMIP 2.1 §6.1.43) replaces a symmetric key; key pairs have Re-Key Key Pair.
    Re-Key of a public (or private) key UID rotates the whole pair today."""
    key_id = _key(kmip_server, "sign", "ECDSA_P256_SHA256")
    result = call(kmip_server, Operation.RE_KEY, key_id + half)
    assert not result.ok
    assert kmip_server.rest.get(f"/v1/keys/{key_id}").json()["primary_version"] == 1


# -- finding 11: a wrongly typed Unique Identifier becomes the ID Placeholder -----------------
def test_integer_unique_identifier_does_not_fall_back_to_the_placeholder(
        kmip_server: KmipServer) -> None:
    """The second item names its object with an Integer Unique Identifier: it must be
    refused, not silently served on the previous item's object (with Destroy or Revoke that
    acts on an object the client did not name)."""
    uid = _key(kmip_server) + "/1"
    message = request_message([
        batch_item(Operation.GET_ATTRIBUTES, [uid_item(uid)]),
        batch_item(Operation.GET_ATTRIBUTES, [Item(Tag.UNIQUE_IDENTIFIER, T.INTEGER, 5)])])
    first, second = parse_response(kmip_server.call(message)).items
    assert first.ok
    assert not second.ok
    assert second.reason in (int(ResultReason.INVALID_MESSAGE),
                             int(ResultReason.INVALID_FIELD))


# -- finding 12: SHA-1 signatures -------------------------------------------------------------
@pytest.mark.parametrize("algorithm,pad", [("RSA_PSS_3072_SHA256", PaddingMethod.PSS),
                                           ("RSA_PSS_3072_SHA256", PaddingMethod.PKCS1_V1_5),
                                           ("ECDSA_P256_SHA256", None)])
def test_sign_with_sha1_is_refused(kmip_server: KmipServer, algorithm: str,
                                   pad: int | None) -> None:
    """NIST SP 800-131A Rev 2 disallows SHA-1 for signature generation (keykeeper already
    refuses SHA-1 for RSA-OAEP key wrapping and 3DES on the same ground)."""
    uid = _key(kmip_server, "sign", algorithm) + "/1"
    kw: dict[str, Any] = {"hash": HashingAlgorithm.SHA_1}
    if pad is not None:
        kw["padding"] = pad
    result = call(kmip_server, Operation.SIGN, uid, params(**kw), b(Tag.DATA, b"x"))
    _refused_cleanly(result)


# -- finding 14: UID alias with a trailing newline -------------------------------------------
def test_uid_with_trailing_newline_is_not_an_alias(kmip_server: KmipServer) -> None:
    uid = _key(kmip_server) + "/1"
    result = call(kmip_server, Operation.GET_ATTRIBUTES, uid + "\n")
    assert not result.ok
    assert result.reason == int(ResultReason.OBJECT_NOT_FOUND)


# -- finding 13: refused messages leave no audit record --------------------------------------
@pytest.mark.parametrize("version", [(3, 0), (1, 5)])
def test_refused_protocol_version_is_audited(kmip_server: KmipServer,
                                             version: tuple[int, int]) -> None:
    """A Destroy in an unsupported protocol version is refused without any audit record
    (an asynchronous or unauthenticated Destroy is audited as kmip.destroy, outcome error)."""
    before = _audit_count(kmip_server, "kmip.destroy")
    uid = _key(kmip_server) + "/1"
    answer = parse_response(kmip_server.call(request_message(
        [batch_item(Operation.DESTROY, [uid_item(uid)])], version=version)))
    assert not answer.items[0].ok
    deadline = time.monotonic() + 5
    while _audit_count(kmip_server, "kmip.destroy") == before \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _audit_count(kmip_server, "kmip.destroy") > before


# -- finding 15: header fields of the wrong type are ignored ---------------------------------
@pytest.mark.parametrize("field", [
    Item(Tag.ASYNCHRONOUS_INDICATOR, T.INTEGER, 1),
    Item(Tag.BATCH_ORDER_OPTION, T.INTEGER, 0),
    Item(Tag.BATCH_ERROR_CONTINUATION_OPTION, T.ENUMERATION, 99)])
def test_header_field_of_wrong_type_or_value_is_invalid_message(kmip_server: KmipServer,
                                                                field: Item) -> None:
    """messages.py: "a header field of the wrong type" is Invalid_Message; these three are
    silently ignored (an Integer Asynchronous Indicator 1 is served synchronously)."""
    message = request_message([batch_item(Operation.DISCOVER_VERSIONS)])
    header = message.find(Tag.REQUEST_HEADER)
    assert header is not None and isinstance(header.value, list)
    header.value.insert(1, field)
    (result,) = parse_response(kmip_server.call(message)).items
    assert result.reason == int(ResultReason.INVALID_MESSAGE)


# -- finding 16: slowloris after the handshake -----------------------------------------------
@pytest.mark.slow
def test_message_trickled_past_the_read_timeout_is_dropped(kmip_server: KmipServer) -> None:
    """server.py: the connection closes "when a message is not complete within
    read_timeout (30)". The timeout is per recv(): one byte every 10 s keeps a connection
    (and its thread) forever."""
    data = encode(request_message([batch_item(Operation.DISCOVER_VERSIONS)]))
    sock = kmip_server.connect(timeout=60)
    try:
        sock.sendall(data[:8])
        sent, start = 8, time.monotonic()
        with contextlib.suppress(OSError, ssl.SSLError):
            while time.monotonic() - start < 42:
                time.sleep(7)
                sock.sendall(data[sent:sent + 1])
                sent += 1
            sock.sendall(data[sent:])
            header = _read_exact(sock, 8)
            _read_exact(sock, message_length(header) - 8)
            pytest.fail("a message that took 42 s to arrive was served")
    finally:
        sock.close()


# -- finding 19: the principal rate limit counts messages, not operations -------------------
def test_rate_limit_applies_to_each_batch_item(kmip_server: KmipServer, kmip_pki: Pki,
                                               tmp_path: Path) -> None:
    """A principal limited to 1 request per second (bucket of 2) runs 100 operations in one
    message: processor._serve calls limits.check_principal once per message. Over REST the
    same principal gets 2 operations; batching must not multiply the limit."""
    name = "brk-rl-" + secrets.token_hex(4)
    cert = principal_cert(kmip_server, kmip_pki, tmp_path, name, ["*"], kmip_server.namespace)
    r = kmip_server.rest.patch(f"/v1/principals/{name}", json={"rate_limit": 1})
    assert r.status_code == 200, r.text
    items = [batch_item(Operation.RNG_RETRIEVE, [Item(Tag.DATA_LENGTH, T.INTEGER, 16)])
             for _ in range(100)]
    message = request_message(items, continuation=BatchErrorContinuationOption.CONTINUE)
    sock = kmip_server.connect(cert)
    try:
        answer = parse_response(decode(kmip_server.exchange(sock, encode(message))))
    finally:
        sock.close()
    served = sum(item.ok for item in answer.items)
    assert served <= 2, f"{served} operations served under a limit of 1 per second"


# -- finding 20: x-keykeeper-namespace can be set to a namespace the key is not in ----------
def test_namespace_attribute_cannot_be_set_to_a_lie(kmip_server: KmipServer) -> None:
    """Set Attribute x-keykeeper-namespace = another namespace succeeds; the key stays in
    ``kmip`` (good) but Get Attributes now reports the other namespace."""
    other = "brk-ns-" + secrets.token_hex(3)
    r = kmip_server.rest.post("/v1/namespaces", json={"name": other})
    assert r.status_code in (200, 201), r.text
    uid = _key(kmip_server) + "/1"
    call(kmip_server, Operation.SET_ATTRIBUTE, uid, Item.structure(Tag.NEW_ATTRIBUTE, [
        Item.structure(Tag.ATTRIBUTE, [
            Item(Tag.VENDOR_IDENTIFICATION, T.TEXT_STRING, "x"),
            Item(Tag.ATTRIBUTE_NAME, T.TEXT_STRING, "x-keykeeper-namespace"),
            Item(Tag.ATTRIBUTE_VALUE, T.TEXT_STRING, other)])]))
    got = call(kmip_server, Operation.GET_ATTRIBUTES, uid)
    assert got.ok and got.payload is not None
    attributes = got.payload.find(Tag.ATTRIBUTES)
    assert attributes is not None
    claimed = [a.find(Tag.ATTRIBUTE_VALUE) for a in attributes.find_all(Tag.ATTRIBUTE)
               if str(getattr(a.find(Tag.ATTRIBUTE_NAME), "value", "")).endswith(
                   "keykeeper-namespace")]
    assert all(v is not None and v.value == kmip_server.namespace for v in claimed), \
        [v.value for v in claimed if v is not None]
