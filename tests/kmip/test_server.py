"""The KMIP listener and message processing, against a real server (tests/kmip/conftest.py):
mutual TLS, framing, malformed input, protocol versions, batches, Discover Versions,
Query, RNG Retrieve, audit records, and POST /kmip in its three encodings."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import time
from typing import Any

import pytest

from keykeeper.kmip.messages import (
    BatchResult,
    batch_item,
    parse_response,
    request_message,
)
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import decode, encode
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    ObjectType,
    Operation,
    QueryFunction,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.json import from_json, to_json
from keykeeper.kmip.ttlv.tags import Tag, tag_since
from keykeeper.kmip.ttlv.xml import from_xml, to_xml
from keykeeper.kmip.versions import SUPPORTED
from tests.kmip.conftest import KmipServer
from tests.kmip.objects_support import walk

OK = ResultStatus.SUCCESS
FAILED = ResultStatus.OPERATION_FAILED


def rng(length: int, uid: bytes | None = None) -> Item:
    return batch_item(Operation.RNG_RETRIEVE,
                      [Item(Tag.DATA_LENGTH, ItemType.INTEGER, length)], unique_id=uid)


def query(*functions: int) -> Item:
    return batch_item(Operation.QUERY, [Item(Tag.QUERY_FUNCTION, ItemType.ENUMERATION, int(f))
                                        for f in functions])


def pv(major: int, minor: int) -> Item:
    return Item.structure(Tag.PROTOCOL_VERSION, [
        Item(Tag.PROTOCOL_VERSION_MAJOR, ItemType.INTEGER, major),
        Item(Tag.PROTOCOL_VERSION_MINOR, ItemType.INTEGER, minor)])


def versions_of(payload: Item | None) -> list[tuple[int, int]]:
    assert payload is not None
    return [(int(v.find(Tag.PROTOCOL_VERSION_MAJOR).value),  # type: ignore[union-attr,arg-type]
             int(v.find(Tag.PROTOCOL_VERSION_MINOR).value))  # type: ignore[union-attr,arg-type]
            for v in payload.find_all(Tag.PROTOCOL_VERSION)]


def one(kmip: KmipServer, item: Item, **kw: Any) -> BatchResult:
    response = parse_response(kmip.call(request_message([item], **kw)))
    assert len(response.items) == 1
    return response.items[0]


# -- operations ----------------------------------------------------------------------------
def test_discover_versions(kmip_server: KmipServer) -> None:
    everything = one(kmip_server, batch_item(Operation.DISCOVER_VERSIONS))
    assert everything.ok and everything.operation == Operation.DISCOVER_VERSIONS
    assert versions_of(everything.payload) == list(SUPPORTED)
    assert versions_of(everything.payload)[0] == (2, 1)
    some = one(kmip_server, batch_item(Operation.DISCOVER_VERSIONS,
                                       [pv(1, 2), pv(3, 0), pv(2, 0)]))
    assert versions_of(some.payload) == [(2, 0), (1, 2)]
    none = one(kmip_server, batch_item(Operation.DISCOVER_VERSIONS, [pv(9, 9)]))
    assert none.ok and versions_of(none.payload) == []


def test_query(kmip_server: KmipServer) -> None:
    result = one(kmip_server, query(QueryFunction.QUERY_OPERATIONS,
                                    QueryFunction.QUERY_OBJECTS,
                                    QueryFunction.QUERY_SERVER_INFORMATION))
    assert result.ok and result.payload is not None
    ops = {i.value for i in result.payload.find_all(Tag.OPERATION)}
    assert {Operation.DISCOVER_VERSIONS, Operation.QUERY, Operation.RNG_RETRIEVE} <= ops
    objects = {i.value for i in result.payload.find_all(Tag.OBJECT_TYPE)}
    assert {ObjectType.SYMMETRIC_KEY, ObjectType.PUBLIC_KEY, ObjectType.PRIVATE_KEY} <= objects
    vendor = result.payload.find(Tag.VENDOR_IDENTIFICATION)
    assert vendor is not None and str(vendor.value).startswith("keykeeper ")


def test_rng_retrieve(kmip_server: KmipServer) -> None:
    first, second = one(kmip_server, rng(32)), one(kmip_server, rng(32))
    assert first.ok and first.payload is not None and second.payload is not None
    data = first.payload.find(Tag.DATA)
    assert data is not None and isinstance(data.value, bytes) and len(data.value) == 32
    assert data.value != second.payload.find(Tag.DATA).value  # type: ignore[union-attr]
    for bad in (0, 65537):
        refused = one(kmip_server, rng(bad))
        assert (refused.status, refused.reason) == (FAILED, ResultReason.INVALID_FIELD)
    missing = one(kmip_server, batch_item(Operation.RNG_RETRIEVE))
    assert (missing.status, missing.reason) == (FAILED, ResultReason.INVALID_FIELD)


def test_unsupported_operation(kmip_server: KmipServer) -> None:
    result = one(kmip_server, batch_item(Operation.POLL))
    assert (result.status, result.reason) == (FAILED, ResultReason.OPERATION_NOT_SUPPORTED)
    assert result.operation == Operation.POLL


# -- batches -------------------------------------------------------------------------------
def test_batch_of_three_continue(kmip_server: KmipServer) -> None:
    response = parse_response(kmip_server.call(request_message(
        [rng(8, b"a"), rng(0, b"b"), query(QueryFunction.QUERY_OBJECTS)],
        continuation=BatchErrorContinuationOption.CONTINUE)))
    assert [(i.unique_id, i.status) for i in response.items] == [
        (b"a", OK), (b"b", FAILED), (None, OK)]
    assert response.items[1].reason == ResultReason.INVALID_FIELD
    assert response.items[2].payload is not None \
        and response.items[2].payload.find(Tag.OBJECT_TYPE) is not None


def test_batch_stops_at_first_failure_by_default(kmip_server: KmipServer) -> None:
    response = parse_response(kmip_server.call(request_message(
        [rng(8, b"1"), rng(0, b"2"), rng(8, b"3")])))
    assert [(i.unique_id, i.status) for i in response.items] == [(b"1", OK), (b"2", FAILED)]


def test_batch_undo_served_and_asynchronous_refused(kmip_server: KmipServer) -> None:
    undo = parse_response(kmip_server.call(request_message(
        [rng(8), rng(8)], continuation=BatchErrorContinuationOption.UNDO)))
    assert [i.status for i in undo.items] == [OK, OK]  # tests/kmip/test_undo.py: the rest
    asynchronous = one(kmip_server, rng(8), asynchronous=True)
    assert asynchronous.reason == ResultReason.OPERATION_NOT_SUPPORTED


def test_maximum_response_size(kmip_server: KmipServer) -> None:
    small = one(kmip_server, rng(1000), max_response_size=200)
    assert (small.status, small.reason) == (FAILED, ResultReason.RESPONSE_TOO_LARGE)
    assert one(kmip_server, rng(16), max_response_size=4096).ok


# -- versions ------------------------------------------------------------------------------
def test_unsupported_version(kmip_server: KmipServer) -> None:
    for asked, answered, reason in (
            ((3, 0), (2, 1), ResultReason.UNSUPPORTED_PROTOCOL_VERSION),
            ((2, 7), (2, 1), ResultReason.UNSUPPORTED_PROTOCOL_VERSION),
            ((1, 5), (1, 4), ResultReason.INVALID_MESSAGE),  # 1.x has no such reason
            ((0, 9), (1, 0), ResultReason.INVALID_MESSAGE)):
        response = parse_response(kmip_server.call(request_message([rng(8)], version=asked)))
        assert response.version == answered
        assert [(i.status, i.reason) for i in response.items] == [(FAILED, reason)]


def test_version_1_0_answer_has_no_later_tags(kmip_server: KmipServer) -> None:
    answer = kmip_server.call(request_message(
        [query(QueryFunction.QUERY_OPERATIONS, QueryFunction.QUERY_OBJECTS,
               QueryFunction.QUERY_SERVER_INFORMATION)], version=(1, 0)))
    response = parse_response(answer)
    assert response.version == (1, 0) and response.items[0].ok
    assert all(tag_since(i.tag) <= (1, 0) for i in walk(answer))
    ops = {i.value for i in response.items[0].payload.find_all(Tag.OPERATION)}  # type: ignore[union-attr]
    assert Operation.QUERY in ops
    assert Operation.RNG_RETRIEVE not in ops and Operation.DISCOVER_VERSIONS not in ops
    # Discover Versions came with KMIP 1.1, RNG Retrieve with 1.2.
    old = one(kmip_server, batch_item(Operation.DISCOVER_VERSIONS), version=(1, 0))
    assert old.reason == ResultReason.OPERATION_NOT_SUPPORTED
    assert one(kmip_server, batch_item(Operation.DISCOVER_VERSIONS), version=(1, 1)).ok
    assert one(kmip_server, rng(8), version=(1, 1)).reason == \
        ResultReason.OPERATION_NOT_SUPPORTED
    assert one(kmip_server, rng(8), version=(1, 2)).ok


# -- transport -----------------------------------------------------------------------------
def test_pipelined_and_fragmented_requests(kmip_server: KmipServer) -> None:
    a = encode(request_message([rng(8, b"x")]))
    b = encode(request_message([rng(8, b"y")]))
    with kmip_server.connect() as sock:
        sock.sendall(a + b)  # two messages in one write: two answers, in order
        first = decode(kmip_server.exchange(sock, b""))
        second = decode(kmip_server.exchange(sock, b""))
        assert parse_response(first).items[0].unique_id == b"x"
        assert parse_response(second).items[0].unique_id == b"y"
        for i in range(0, len(a) - 1, 5):  # one message dribbled in small pieces
            sock.sendall(a[i:i + 5])
            time.sleep(0.001)
        assert parse_response(decode(kmip_server.exchange(sock, a[-(len(a) % 5 or 5):])))\
            .items[0].ok


def test_many_requests_on_one_connection(kmip_server: KmipServer) -> None:
    request = encode(request_message([rng(4)]))
    with kmip_server.connect() as sock:
        for _ in range(50):
            assert parse_response(decode(kmip_server.exchange(sock, request))).items[0].ok


def _answer_or_close(kmip: KmipServer, data: bytes) -> Item | None:
    with kmip.connect(timeout=10) as sock:
        try:
            return decode(kmip.exchange(sock, data))
        except (ConnectionError, ssl.SSLError, OSError):
            return None


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    random.Random(5696).randbytes(64),
    struct.pack(">I", 0x42007801) + struct.pack(">I", 2 * 1024 * 1024),  # oversized
    struct.pack(">I", 0x42007802) + struct.pack(">I", 4) + bytes(8),  # not a Structure
], ids=["http", "random", "oversized", "not-a-structure"])
def test_garbage_gets_invalid_message_or_close(kmip_server: KmipServer,
                                               garbage: bytes) -> None:
    answer = _answer_or_close(kmip_server, garbage)
    if answer is not None:
        item = parse_response(answer).items[0]
        assert (item.status, item.reason) == (FAILED, ResultReason.INVALID_MESSAGE)
    assert one(kmip_server, rng(4)).ok  # the server lives on


def test_well_framed_bad_message_keeps_the_connection(kmip_server: KmipServer) -> None:
    bad_inner = Item.structure(Tag.REQUEST_MESSAGE, [Item(Tag.BATCH_COUNT, ItemType.INTEGER, 1)])
    bad_padding = bytearray(encode(request_message([rng(4)])))
    bad_padding[-1] = 0xFF  # the last item's padding must be zero
    with kmip_server.connect() as sock:
        for data in (encode(bad_inner), bytes(bad_padding)):
            item = parse_response(decode(kmip_server.exchange(sock, data))).items[0]
            assert item.reason == ResultReason.INVALID_MESSAGE
        ok = parse_response(decode(kmip_server.exchange(sock, encode(request_message([rng(4)])))))
        assert ok.items[0].ok


def test_no_client_certificate_refused(kmip_server: KmipServer) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)), \
            kmip_server.connect(with_cert=False, timeout=10) as sock:
        kmip_server.exchange(sock, encode(request_message([rng(4)])))


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_versions(kmip_server: KmipServer) -> None:
    """TLS 1.2 is accepted; TLS 1.1 is refused even when the client offers it."""
    request = encode(request_message([rng(4)]))
    for version, works in ((ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_1, False)):
        ctx = kmip_server.context()
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
        raw = socket.create_connection((kmip_server.host, kmip_server.port), timeout=10)
        try:
            if works:
                with ctx.wrap_socket(raw, server_hostname=kmip_server.host) as sock:
                    assert sock.version() == "TLSv1.2"
                    assert parse_response(decode(kmip_server.exchange(sock, request)))\
                        .items[0].ok
            else:
                with pytest.raises(ssl.SSLError):
                    ctx.wrap_socket(raw, server_hostname=kmip_server.host)
        finally:
            raw.close()


def test_unknown_certificate_not_authenticated(kmip_server: KmipServer) -> None:
    with kmip_server.connect((kmip_server.unmapped_cert, kmip_server.unmapped_key)) as sock:
        answer = parse_response(decode(kmip_server.exchange(
            sock, encode(request_message([rng(4, b"1"), query(QueryFunction.QUERY_OBJECTS)],
                                         continuation=BatchErrorContinuationOption.CONTINUE)))))
    assert [(i.unique_id, i.reason) for i in answer.items] == [
        (b"1", ResultReason.AUTHENTICATION_NOT_SUCCESSFUL),
        (None, ResultReason.AUTHENTICATION_NOT_SUCCESSFUL)]
    # The answer names the certificate's subject, for the operator who maps it.
    assert answer.items[0].message == ("certificate does not map to an enabled principal "
                                       "(subject CN=kmip-stranger)")


# -- audit and REST ------------------------------------------------------------------------
def test_audit_records_per_batch_item(kmip_server: KmipServer) -> None:
    response = parse_response(kmip_server.call(request_message(
        [rng(4), rng(4), batch_item(Operation.POLL)],
        continuation=BatchErrorContinuationOption.CONTINUE)))
    assert [i.status for i in response.items] == [OK, OK, FAILED]
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = kmip_server.rest.get("/v1/audit", params={"operation": "kmip.rng_retrieve",
                                                      "principal": "kmip-admin"})
        assert r.status_code == 200, r.text
        records = r.json()["records"]
        polls = kmip_server.rest.get("/v1/audit", params={"operation": "kmip.poll"})
        if len(records) >= 2 and polls.json()["records"]:
            break
        time.sleep(0.2)
    assert len(records) >= 2
    assert {rec["principal"] for rec in records} == {"kmip-admin"}
    poll = polls.json()["records"]
    assert poll and poll[0]["outcome"] != "success"


def test_post_kmip_binary_json_xml(kmip_server: KmipServer) -> None:
    request = request_message([rng(16), query(QueryFunction.QUERY_OBJECTS)],
                              continuation=BatchErrorContinuationOption.CONTINUE)
    cases = [("application/octet-stream", encode(request), decode),
             ("application/json", to_json(request), from_json),
             ("text/xml", to_xml(request).encode(), lambda b: from_xml(b.decode()))]
    for content_type, body, parse in cases:
        r = kmip_server.rest.post("/kmip", content=body,
                                  headers={"Content-Type": content_type})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(content_type)
        response = parse_response(parse(r.content))
        assert [i.status for i in response.items] == [OK, OK], content_type
        data = response.items[0].payload.find(Tag.DATA)  # type: ignore[union-attr]
        assert data is not None and len(data.value) == 16  # type: ignore[arg-type]


def test_post_kmip_needs_credentials(kmip_server: KmipServer) -> None:
    import httpx
    with httpx.Client(base_url=kmip_server.rest_url,
                      verify=ssl.create_default_context(cafile=str(kmip_server.ca))) as anon:
        r = anon.post("/kmip", content=encode(request_message([rng(4)])),
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200
        assert parse_response(decode(r.content)).items[0].reason == \
            ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
        r = anon.post("/kmip", content=b"x", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
    bad = kmip_server.rest.post("/kmip", content=b"\x00" * 16,
                                headers={"Content-Type": "application/octet-stream"})
    assert parse_response(decode(bad.content)).items[0].reason == ResultReason.INVALID_MESSAGE


def test_result_reasons_of_2x_in_a_1x_answer() -> None:
    from keykeeper.kmip.versions import older_reason
    # The KMIP 1.4 test cases answer Permission Denied where 2.x says Wrong Key Lifecycle
    # State (e.g. SKLC-M-2-14: Destroy of an active key).
    assert older_reason(ResultReason.WRONG_KEY_LIFECYCLE_STATE, (1, 4)) == \
        ResultReason.PERMISSION_DENIED
    assert older_reason(ResultReason.OBJECT_NOT_FOUND, (1, 0)) == ResultReason.ITEM_NOT_FOUND
    assert older_reason(ResultReason.PKCS_11_CODEC_ERROR, (1, 0)) == \
        ResultReason.GENERAL_FAILURE


def test_every_operation_module_is_dispatched() -> None:
    import importlib
    import pkgutil

    import keykeeper.kmip.ops as ops

    modules = [m.name for m in pkgutil.iter_modules(ops.__path__)
               if m.name != "base" and not m.name.startswith("_")]
    for name in modules:
        module = importlib.import_module(f"keykeeper.kmip.ops.{name}")
        assert ops.OPERATIONS.get(int(module.OPERATION)) is module.handle, name
    assert len(ops.OPERATIONS) == len(modules)
