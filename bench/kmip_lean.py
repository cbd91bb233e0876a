"""The lean KMIP client of bench/kmip_ops.py, and its ceiling server.

* :class:`LeanClient`: prebuilt binary TTLV requests (keykeeper.kmip.ttlv.codec) written
  to one persistent TLS socket; each answer is read whole (8-byte header, then
  ``message_length``), decoded, and its Result Status checked. No request building in the
  loop: the client costs as little as a Python client can.
* ``python bench/kmip_lean.py echo PORT CERT KEY CA [REPLIES]``: the ceiling server, built
  as keykeeper's KMIP listener is (kmip/server.py: blocking sockets, one thread per
  connection, keykeeper's server TLS policy, client certificate required) but with no
  KMIP processing: it reads one TTLV message by its header, decodes it and encodes it
  back -- the raw cost of TLS, framing and the codec. With ``REPLIES`` (a file written by
  :func:`write_replies`: canned Response Messages by Operation) it answers each request
  with the canned response of its operation instead, decoded and re-encoded as well, so
  that PyKMIP's client, which needs a real response, can be measured against it too.

Tags and enumeration values are KMIP 1.2's (KMIP 1.4 §9.1.3); the requests are KMIP 1.2,
the version PyKMIP's ProxyKmipClient speaks by default.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from keykeeper.kmip.ttlv import Item, ItemType  # noqa: E402
from keykeeper.kmip.ttlv.codec import decode, encode, message_length  # noqa: E402

# Tags (KMIP 1.4 §9.1.3.1)
ATTRIBUTE = 0x420008
ATTRIBUTE_NAME = 0x42000A
ATTRIBUTE_VALUE = 0x42000B
BATCH_COUNT = 0x42000D
BATCH_ITEM = 0x42000F
BLOCK_CIPHER_MODE = 0x420011
CRYPTOGRAPHIC_ALGORITHM = 0x420028
CRYPTOGRAPHIC_PARAMETERS = 0x42002B
DATA = 0x4200C2
OBJECT_TYPE = 0x420057
OPERATION = 0x42005C
PADDING_METHOD = 0x42005F
PROTOCOL_VERSION = 0x420069
PROTOCOL_VERSION_MAJOR = 0x42006A
PROTOCOL_VERSION_MINOR = 0x42006B
RANDOM_IV = 0x4200C5
REQUEST_HEADER = 0x420077
REQUEST_MESSAGE = 0x420078
REQUEST_PAYLOAD = 0x420079
RESPONSE_MESSAGE = 0x42007B
RESPONSE_PAYLOAD = 0x42007C
RESULT_MESSAGE = 0x42007D
RESULT_REASON = 0x42007E
RESULT_STATUS = 0x42007F
TEMPLATE_ATTRIBUTE = 0x420091
UNIQUE_IDENTIFIER = 0x420094
# Enumerations (KMIP 1.4 §9.1.3.2)
OP_CREATE, OP_GET, OP_ACTIVATE, OP_ENCRYPT = 0x01, 0x0A, 0x12, 0x1F
SYMMETRIC_KEY = 0x02
AES = 0x03
CBC = 0x01
PKCS5 = 0x03
MASK_ENCRYPT_DECRYPT = 0x04 | 0x08
SUCCESS = 0x00

S, INT, E, B, T, BS = (ItemType.STRUCTURE, ItemType.INTEGER, ItemType.ENUMERATION,
                     ItemType.BOOLEAN, ItemType.TEXT_STRING, ItemType.BYTE_STRING)


def _attr(name: str, value: Item) -> Item:
    return Item.structure(ATTRIBUTE, [Item(ATTRIBUTE_NAME, T, name),
                                      Item(ATTRIBUTE_VALUE, value.type, value.value)])


def request(operation: int, payload: list[Item], version: tuple[int, int] = (1, 2)) -> bytes:
    """One Request Message (one batch item) as binary TTLV."""
    header = Item.structure(REQUEST_HEADER, [
        Item.structure(PROTOCOL_VERSION, [Item(PROTOCOL_VERSION_MAJOR, INT, version[0]),
                                          Item(PROTOCOL_VERSION_MINOR, INT, version[1])]),
        Item(BATCH_COUNT, INT, 1)])
    batch = Item.structure(BATCH_ITEM, [Item(OPERATION, E, operation),
                                        Item.structure(REQUEST_PAYLOAD, payload)])
    return encode(Item.structure(REQUEST_MESSAGE, [header, batch]))


def create_aes256() -> bytes:
    """Create: a Symmetric Key, AES, 256 bits, usage Encrypt|Decrypt (as PyKMIP sends it)."""
    return request(OP_CREATE, [
        Item(OBJECT_TYPE, E, SYMMETRIC_KEY),
        Item.structure(TEMPLATE_ATTRIBUTE, [
            _attr("Cryptographic Algorithm", Item(0, E, AES)),
            _attr("Cryptographic Length", Item(0, INT, 256)),
            _attr("Cryptographic Usage Mask", Item(0, INT, MASK_ENCRYPT_DECRYPT))])])


def get(uid: str) -> bytes:
    return request(OP_GET, [Item(UNIQUE_IDENTIFIER, T, uid)])


def activate(uid: str) -> bytes:
    return request(OP_ACTIVATE, [Item(UNIQUE_IDENTIFIER, T, uid)])


def encrypt_cbc(uid: str, data: bytes) -> bytes:
    """Encrypt ``data`` with AES-CBC, PKCS#5 padding; no IV given: the server makes one."""
    return request(OP_ENCRYPT, [
        Item(UNIQUE_IDENTIFIER, T, uid),
        Item.structure(CRYPTOGRAPHIC_PARAMETERS, [
            Item(BLOCK_CIPHER_MODE, E, CBC), Item(PADDING_METHOD, E, PKCS5),
            Item(CRYPTOGRAPHIC_ALGORITHM, E, AES), Item(RANDOM_IV, B, True)]),
        Item(DATA, BS, data)])


def _read_exact(sock: ssl.SSLSocket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    return bytes(buf)


def client_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


class KmipFailure(RuntimeError):
    pass


class LeanClient:
    """One persistent TLS connection; ``call(data)`` sends prebuilt request bytes and
    returns the decoded answer (raises KmipFailure when its status is not Success)."""

    def __init__(self, port: int, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> None:
        raw = socket.create_connection((host, port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)

    def exchange(self, data: bytes) -> bytes:
        self.sock.sendall(data)
        header = _read_exact(self.sock, 8)
        return header + _read_exact(self.sock, message_length(header) - 8)

    def call(self, data: bytes) -> Item:
        answer = decode(self.exchange(data))
        if answer.tag == RESPONSE_MESSAGE:
            batch = answer.find(BATCH_ITEM)
            status = batch.find(RESULT_STATUS) if batch is not None else None
            if status is None or status.value != SUCCESS:
                raise KmipFailure(describe_failure(answer))
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def describe_failure(answer: Item) -> str:
    batch = answer.find(BATCH_ITEM)
    if batch is None:
        return "no batch item in the response"
    parts = []
    for tag in (RESULT_STATUS, RESULT_REASON, RESULT_MESSAGE):
        item = batch.find(tag)
        if item is not None:
            parts.append(str(item.value))
    return "KMIP failure: " + " / ".join(parts)


def response_uid(answer: Item) -> str:
    batch = answer.find(BATCH_ITEM)
    payload = batch.find(RESPONSE_PAYLOAD) if batch is not None else None
    uid = payload.find(UNIQUE_IDENTIFIER) if payload is not None else None
    if uid is None or not isinstance(uid.value, str):
        raise KmipFailure("no Unique Identifier in the response")
    return uid.value


def write_replies(path: Path, replies: dict[int, bytes]) -> None:
    """Canned Response Messages (binary TTLV) by Operation value, for the echo server."""
    path.write_text(json.dumps({str(op): data.hex() for op, data in replies.items()}))


# -- the ceiling server ---------------------------------------------------------------------
def _operation(request_item: Item) -> int:
    batch = request_item.find(BATCH_ITEM)
    op = batch.find(OPERATION) if batch is not None else None
    return int(op.value) if op is not None and isinstance(op.value, int) else -1


def _serve_connection(raw: socket.socket, ctx: ssl.SSLContext,
                      replies: dict[int, Item]) -> None:
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(300)
        with ctx.wrap_socket(raw, server_side=True) as tls:
            while True:
                header = _read_exact(tls, 8)
                item = decode(header + _read_exact(tls, message_length(header) - 8))
                tls.sendall(encode(replies.get(_operation(item), item)))
    except (ConnectionError, OSError):
        pass
    finally:
        raw.close()


def _serve(port: int, ctx: ssl.SSLContext, replies: dict[int, Item]) -> None:
    with socket.create_server(("127.0.0.1", port), backlog=128) as listener:
        while True:
            raw, _ = listener.accept()
            threading.Thread(target=_serve_connection, args=(raw, ctx, replies),
                             daemon=True).start()


def serve_echo(argv: list[str]) -> None:
    from keykeeper.tls.context import TlsSettings, server_context

    port, cert, key, ca = int(argv[0]), argv[1], argv[2], argv[3]
    replies: dict[int, Item] = {}
    if len(argv) > 4:
        for op, data in json.loads(Path(argv[4]).read_text()).items():
            replies[int(op)] = decode(bytes.fromhex(data))
    settings = TlsSettings.from_values(cert, key, ca, "required")
    assert settings is not None
    _serve(port, server_context(settings, alpn=()), replies)


if __name__ == "__main__":
    if len(sys.argv) < 6 or sys.argv[1] != "echo":
        sys.exit("usage: kmip_lean.py echo PORT CERT KEY CA [REPLIES]")
    serve_echo(sys.argv[2:])
