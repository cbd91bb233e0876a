"""The KMIP listener's life: sealed answers, idle timeout, message size limit, graceful
stop, and settings refused at start. One server of its own (tests/kmip/conftest.py
``launch``), since these tests seal and stop it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keykeeper.config import run_server
from keykeeper.errors import InvalidArgument
from keykeeper.kmip.messages import batch_item, parse_response, request_message
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import decode, encode
from keykeeper.kmip.ttlv.enums import Operation, ResultReason, ResultStatus
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer, launch
from tests.tls.conftest import Pki, TlsServer

IDLE = 1.0


def rng(length: int) -> Item:
    return batch_item(Operation.RNG_RETRIEVE,
                      [Item(Tag.DATA_LENGTH, ItemType.INTEGER, length)])


@pytest.fixture(scope="module")
def lifecycle(kmip_pki: Pki, tmp_path_factory: pytest.TempPathFactory,
              ) -> Iterator[tuple[TlsServer, KmipServer]]:
    with launch(kmip_pki, tmp_path_factory, {"KEYKEEPER_KMIP_IDLE_TIMEOUT": str(IDLE),
                                             "KEYKEEPER_KMIP_MAX_MESSAGE": "2048"}) as both:
        yield both


def test_sealed_answers_general_failure(lifecycle: tuple[TlsServer, KmipServer]) -> None:
    server, kmip = lifecycle
    assert server.post("/v1/sys/seal").status_code == 200
    try:
        answer = parse_response(kmip.call(request_message(
            [batch_item(Operation.DISCOVER_VERSIONS), rng(8)])))
        assert answer.items[0].ok  # Discover Versions needs no key
        sealed = answer.items[1]
        assert (sealed.status, sealed.reason, sealed.message) == (
            ResultStatus.OPERATION_FAILED, ResultReason.GENERAL_FAILURE, "sealed")
    finally:
        server.unseal()
    assert parse_response(kmip.call(request_message([rng(8)]))).items[0].ok


def test_idle_connection_closed(lifecycle: tuple[TlsServer, KmipServer]) -> None:
    _, kmip = lifecycle
    with kmip.connect() as sock:
        assert parse_response(decode(kmip.exchange(sock, encode(request_message([rng(4)])))))\
            .items[0].ok
        time.sleep(IDLE + 1.0)
        sock.settimeout(5)
        assert sock.recv(1) == b""  # closed by the server


def test_message_above_the_limit(lifecycle: tuple[TlsServer, KmipServer]) -> None:
    _, kmip = lifecycle
    big = request_message([batch_item(Operation.DISCOVER_VERSIONS, [
        Item(Tag.VENDOR_IDENTIFICATION, ItemType.TEXT_STRING, "x" * 4000)])])
    with kmip.connect() as sock:
        answer = parse_response(decode(kmip.exchange(sock, encode(big))))
        assert answer.items[0].reason == ResultReason.INVALID_MESSAGE
        sock.settimeout(5)
        try:
            closed = sock.recv(1) == b""
        except ConnectionError:
            closed = True
        assert closed
    assert parse_response(kmip.call(request_message([rng(4)]))).items[0].ok


def test_graceful_stop(lifecycle: tuple[TlsServer, KmipServer]) -> None:
    server, kmip = lifecycle
    sock = kmip.connect()
    try:
        assert parse_response(decode(kmip.exchange(sock, encode(request_message([rng(4)])))))\
            .items[0].ok
        started = time.monotonic()
        server.stop()  # SIGTERM with an idle KMIP connection open
        assert time.monotonic() - started < 8
        sock.settimeout(5)
        assert sock.recv(1) == b""
    finally:
        sock.close()
    log = (kmip.data_dir / "server.log").read_text()
    assert "Traceback" not in log


def test_kmip_without_client_ca_refused(tmp_path: object,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("KEYKEEPER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KEYKEEPER_KMIP_LISTEN", "127.0.0.1:5696")
    monkeypatch.setenv("KEYKEEPER_DATA_DIR", str(tmp_path))
    with pytest.raises(InvalidArgument, match="KEYKEEPER_KMIP_LISTEN needs TLS"):
        run_server(listen="127.0.0.1:8200", data_dir=str(tmp_path))
    monkeypatch.setenv("KEYKEEPER_KMIP_LISTEN", "nonsense")
    with pytest.raises(InvalidArgument, match="HOST:PORT"):
        run_server(listen="127.0.0.1:8200", data_dir=str(tmp_path))


def test_a_kmip_address_in_use_is_one_line_before_the_start(
        kmip_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The KMIP port already taken: InvalidArgument naming the address and the reason,
    before the database, the banner or the REST server (it was a start-up traceback)."""
    for name in [k for k in os.environ if k.startswith("KEYKEEPER_")]:
        monkeypatch.delenv(name)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        for name, value in (("KEYKEEPER_KMIP_LISTEN", f"127.0.0.1:{port}"),
                            ("KEYKEEPER_TLS_CERT_FILE", str(kmip_pki.server)),
                            ("KEYKEEPER_TLS_KEY_FILE", str(kmip_pki.server_key)),
                            ("KEYKEEPER_TLS_CLIENT_CA_FILE", str(kmip_pki.ca)),
                            ("KEYKEEPER_DATA_DIR", str(tmp_path / "data"))):
            monkeypatch.setenv(name, value)
        with pytest.raises(InvalidArgument) as refused:
            run_server(listen="127.0.0.1:8200", data_dir=str(tmp_path / "data"))
    assert str(refused.value) == (f"cannot listen for KMIP on 127.0.0.1:{port}: Address "
                                  "already in use (--kmip-listen, KEYKEEPER_KMIP_LISTEN)")
    assert not (tmp_path / "data").exists()   # refused before anything was made


def test_the_start_names_the_kmip_namespace_and_warns_while_it_is_missing(
        lifecycle: tuple[TlsServer, KmipServer]) -> None:
    # launch() starts the server on a fresh store, then creates the namespace.
    server, _ = lifecycle
    log = (server.data_dir / "server.log").read_text()
    assert "(namespace kmip)" in log or "namespace kmip" in log
    assert "the KMIP namespace 'kmip' (KEYKEEPER_KMIP_NAMESPACE) does not exist" in log
    assert "keykeeper namespace create kmip" in log
