"""How the runner reaches the server: one Request Message in, one Response Message out.

* :class:`TtlvConnection`: binary TTLV over one TLS connection (KMIP 2.1 §9.1, §10.1; the
  KMIP port, 5696 by default).
* :class:`HttpsConnection`: ``POST /kmip`` over HTTPS (KMIP 2.1 §10.2), the body in binary
  TTLV (``application/octet-stream``), JSON TTLV (``application/json``) or XML TTLV
  (``text/xml``): the three encodings the MSGENC test cases are about.

Both raise OSError (ConnectionError when the server closes) for transport failures and
TtlvError for an answer that does not decode.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from keykeeper.kmip.ttlv import Item, TtlvError
from keykeeper.kmip.ttlv.codec import HEADER_SIZE, decode, encode, message_length
from keykeeper.kmip.ttlv.json import from_json, to_json
from keykeeper.kmip.ttlv.xml import from_xml, to_xml

__all__ = ["Connection", "Encoding", "HttpsConnection", "Target", "TtlvConnection"]

Encoding = Literal["ttlv", "json", "xml"]
_MEDIA: dict[Encoding, str] = {"ttlv": "application/octet-stream",
                               "json": "application/json", "xml": "text/xml"}


def _xml_bytes(item: Item) -> bytes:
    return to_xml(item).encode("utf-8")


_CODECS: dict[Encoding, tuple[Callable[[Item], bytes], Callable[[bytes], Item]]] = {
    "ttlv": (encode, decode),
    "json": (to_json, from_json),
    "xml": (_xml_bytes, from_xml),
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where the server listens: ``host``/``port`` the KMIP (TTLV) listener, ``https``
    the REST listener as ``HOST:PORT`` (None: the MSGENC files go over TTLV too);
    ``context`` the CA to trust and the client certificate; ``timeout`` seconds per read
    or write."""

    host: str
    port: int
    context: ssl.SSLContext
    timeout: float = 60.0
    https: str | None = None


class Connection(Protocol):
    def call(self, request: Item) -> Item: ...

    def close(self) -> None: ...


class TtlvConnection:
    """One TLS connection carrying binary TTLV messages, one request at a time."""

    def __init__(self, target: Target) -> None:
        raw = socket.create_connection((target.host, target.port), timeout=target.timeout)
        try:
            self._sock = target.context.wrap_socket(raw, server_hostname=target.host)
        except BaseException:
            raw.close()
            raise

    def call(self, request: Item) -> Item:
        self._sock.sendall(encode(request))
        header = self._read(HEADER_SIZE)
        return decode(header + self._read(message_length(header) - HEADER_SIZE))

    def _read(self, n: int) -> bytes:
        chunks: list[bytes] = []
        while n:
            chunk = self._sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("the server closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class HttpsConnection:
    """``POST /kmip`` on one persistent HTTPS connection, in ``encoding``."""

    def __init__(self, target: Target, encoding: Encoding) -> None:
        if target.https is None:
            raise ValueError("no HTTPS address")
        host, _, port = target.https.rpartition(":")
        self._conn = http.client.HTTPSConnection(host.strip("[]"), int(port),
                                                 timeout=target.timeout,
                                                 context=target.context)
        self._encode, self._decode = _CODECS[encoding]
        self._media = _MEDIA[encoding]
        self._conn.connect()

    def call(self, request: Item) -> Item:
        self._conn.request("POST", "/kmip", body=self._encode(request),
                           headers={"Content-Type": self._media, "Accept": self._media})
        response = self._conn.getresponse()
        body = response.read(16 * 1024 * 1024 + 1)
        if response.status != 200:
            raise ConnectionError(f"POST /kmip answered HTTP {response.status}")
        try:
            return self._decode(body)
        except ValueError as exc:  # TtlvError, or a JSON/XML decoder's own error
            raise TtlvError(str(exc)) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()
