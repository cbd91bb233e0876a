"""KMIP server hardening beyond the breaker's reproductions (tests/kmip/test_breaker.py):
payload item types, the Enumeration ID Placeholder, the server's response limit, audit
records of refused messages, the TLS handshake deadline. Real server subprocesses."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import time

import keykeeper.kmip.ops  # noqa: F401  (the dispatch table first)
from keykeeper.kmip.messages import batch_item, parse_response, request_message
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import decode, encode
from keykeeper.kmip.ttlv.enums import (
    Operation,
    ResultReason,
    RevocationReasonCode,
    UniqueIdentifier,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer, _read_exact
from tests.kmip.crypto_helpers import call, failed
from tests.kmip.kmip_attr_helpers import uid_item

T = ItemType


def _key(kmip: KmipServer) -> str:
    r = kmip.rest.post("/v1/keys", json={"name": "hard-" + secrets.token_hex(6),
                                         "namespace": kmip.namespace, "purpose": "encrypt",
                                         "algorithm": "AES_256_GCM"})
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"]) + "/1"


def _audit(kmip: KmipServer, operation: str,
           since: str | None = None) -> list[dict[str, object]]:
    params: dict[str, str | int] = {"operation": operation, "page_size": 1000}
    if since is not None:
        params["since"] = since
    r = kmip.rest.get("/v1/audit", params=params)
    assert r.status_code == 200, r.text
    records: list[dict[str, object]] = r.json()["records"]
    return records


def test_enumeration_typed_for_its_tag_is_invalid_field(kmip_server: KmipServer) -> None:
    """Revocation Reason Code given as an Integer is refused, and the key is not revoked."""
    uid = _key(kmip_server)
    result = call(kmip_server, Operation.REVOKE, uid, Item.structure(
        Tag.REVOCATION_REASON, [Item(Tag.REVOCATION_REASON_CODE, T.INTEGER,
                                     int(RevocationReasonCode.KEY_COMPROMISE))]))
    assert "Revocation Reason Code must be an Enumeration" in failed(
        result, ResultReason.INVALID_FIELD)
    key_id = uid.split("/")[0]
    assert kmip_server.rest.get(f"/v1/keys/{key_id}").json()["state"] == "active"


def test_date_as_text_in_locate_is_invalid_field(kmip_server: KmipServer) -> None:
    result = call(kmip_server, Operation.LOCATE, None, Item.structure(
        Tag.ATTRIBUTES, [Item(Tag.ACTIVATION_DATE, T.TEXT_STRING, "2020-01-01")]))
    assert "Activation Date must be a Date-Time" in failed(result, ResultReason.INVALID_FIELD)


def test_enumeration_id_placeholder_names_the_previous_object(
        kmip_server: KmipServer) -> None:
    """KMIP 2.x: a Unique Identifier given as the Enumeration ID Placeholder is the batch's
    placeholder; any other Unique Identifier Enumeration is refused."""
    uid = _key(kmip_server)
    placeholder = Item(Tag.UNIQUE_IDENTIFIER, T.ENUMERATION,
                       int(UniqueIdentifier.ID_PLACEHOLDER))
    first, second = parse_response(kmip_server.call(request_message([
        batch_item(Operation.GET_ATTRIBUTES, [uid_item(uid)]),
        batch_item(Operation.GET_ATTRIBUTES, [placeholder])]))).items
    assert first.ok and second.ok, (second.reason, second.message)
    assert second.payload is not None
    got = second.payload.find(Tag.UNIQUE_IDENTIFIER)
    assert got is not None and got.value == uid
    other = Item(Tag.UNIQUE_IDENTIFIER, T.ENUMERATION, int(UniqueIdentifier.LOCATE))
    _, refused = parse_response(kmip_server.call(request_message([
        batch_item(Operation.GET_ATTRIBUTES, [uid_item(uid)]),
        batch_item(Operation.GET_ATTRIBUTES, [other])]))).items
    failed(refused, ResultReason.INVALID_FIELD)


def test_response_beyond_the_server_limit_is_response_too_large(
        kmip_server: KmipServer) -> None:
    """100 RNG Retrieve items of 64 KiB (6.5 MB) exceed the server's 4 MiB: every item is
    Response_Too_Large, the message says whose limit, and serving stopped early (well under
    the 100 items' worth of time)."""
    items = [batch_item(Operation.RNG_RETRIEVE, [Item(Tag.DATA_LENGTH, T.INTEGER, 65536)],
                        unique_id=bytes([i])) for i in range(100)]
    answer = parse_response(kmip_server.call(request_message(items)))
    assert len(answer.items) == 100
    assert {i.reason for i in answer.items} == {int(ResultReason.RESPONSE_TOO_LARGE)}
    assert [i.unique_id for i in answer.items] == [bytes([i]) for i in range(100)]
    assert "server's limit of 4194304 bytes" in (answer.items[0].message or "")
    small = parse_response(kmip_server.call(request_message(items[:10]))).items
    assert all(i.ok for i in small)


def test_client_maximum_response_size_still_applies(kmip_server: KmipServer) -> None:
    items = [batch_item(Operation.RNG_RETRIEVE, [Item(Tag.DATA_LENGTH, T.INTEGER, 1024)])
             for _ in range(4)]
    answer = parse_response(kmip_server.call(request_message(items, max_response_size=2000)))
    assert {i.reason for i in answer.items} == {int(ResultReason.RESPONSE_TOO_LARGE)}
    assert answer.items[0].message == "the response exceeds the Maximum Response Size"


def test_undecodable_message_on_the_listener_is_audited(kmip_server: KmipServer) -> None:
    """A whole message that does not decode (a Structure whose inner length overruns) is
    answered Invalid_Message and recorded once as kmip.unknown, outcome error."""
    # Records made from now on only (an earlier test's record may still be on its way to
    # the searchable sink, carrying its own, earlier time).
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=5)).isoformat()
    bad = bytes.fromhex("4200780100000010" "4200770100000010") + bytes(8)  # inner overruns
    sock = kmip_server.connect()
    try:
        (result,) = parse_response(decode(kmip_server.exchange(sock, bad))).items
    finally:
        sock.close()
    assert result.reason == int(ResultReason.INVALID_MESSAGE)
    deadline = time.monotonic() + 5
    while not (records := _audit(kmip_server, "kmip.unknown", since)) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.3)  # a second record, if any, would have landed by now
    records = _audit(kmip_server, "kmip.unknown", since)
    assert len(records) == 1
    assert records[0]["outcome"] == "error" and records[0]["interface"] == "kmip"


def test_batch_count_mismatch_is_audited_under_its_operation(
        kmip_server: KmipServer) -> None:
    before = len(_audit(kmip_server, "kmip.destroy"))
    message = request_message([batch_item(Operation.DESTROY, [uid_item(_key(kmip_server))])])
    header = message.find(Tag.REQUEST_HEADER)
    assert header is not None and isinstance(header.value, list)
    header.value[-1] = Item(Tag.BATCH_COUNT, T.INTEGER, 2)
    (result,) = parse_response(kmip_server.call(message)).items
    assert result.reason == int(ResultReason.INVALID_MESSAGE)
    deadline = time.monotonic() + 5
    while len(_audit(kmip_server, "kmip.destroy")) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_audit(kmip_server, "kmip.destroy")) == before + 1


def test_a_socket_that_never_starts_tls_is_closed_after_the_handshake_deadline(
        kmip_server: KmipServer) -> None:
    """The TLS handshake must complete within 5 s (the whole handshake, not per read)."""
    started = time.monotonic()
    with socket.create_connection((kmip_server.host, kmip_server.port), timeout=20) as raw:
        raw.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        assert raw.recv(1024) == b""
    assert 3 < time.monotonic() - started < 10


def test_message_after_a_refusal_is_served(kmip_server: KmipServer) -> None:
    """A decodable but refused message (header field of the wrong type) keeps the
    connection: the next valid message on it is served."""
    bad = request_message([batch_item(Operation.DISCOVER_VERSIONS)])
    header = bad.find(Tag.REQUEST_HEADER)
    assert header is not None and isinstance(header.value, list)
    header.value.insert(1, Item(Tag.ASYNCHRONOUS_INDICATOR, T.INTEGER, 1))
    sock = kmip_server.connect()
    try:
        (refused,) = parse_response(decode(kmip_server.exchange(sock, encode(bad)))).items
        sock.sendall(encode(request_message([batch_item(Operation.DISCOVER_VERSIONS)])))
        head = _read_exact(sock, 8)
        rest = _read_exact(sock, int.from_bytes(head[4:], "big"))
        (served,) = parse_response(decode(head + rest)).items
    finally:
        sock.close()
    assert refused.reason == int(ResultReason.INVALID_MESSAGE)
    assert served.ok
