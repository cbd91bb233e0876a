"""Audit records to syslog: each record's JSON line as one syslog message.

Addresses: ``udp://HOST:PORT`` and ``tcp://HOST:PORT`` send RFC 5424 messages (over TCP
with RFC 6587 octet-counting framing); ``unix:///dev/log`` (or a bare path) sends to the
local syslog daemon's datagram socket in the traditional ``<PRI>keykeeper[PID]: MSG``
form, as the C library's syslog(3) does. The default is ``/dev/log`` if it exists, else
``udp://127.0.0.1:514``. Facility ``authpriv`` (10); severity ``info`` for success,
``warning`` for errors and audit alerts.

The standard library's ``SysLogHandler`` is not used because it reports send errors to
stderr instead of raising them, and a *required* sink must know when a record was lost.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from keykeeper.audit.writer import Entry

__all__ = ["SyslogAuditSink"]

FACILITY_AUTHPRIV = 10
INFO, WARNING = 6, 4


class SyslogAuditSink:
    """Sends each record as one syslog message; raises OSError when one cannot be sent."""

    def __init__(self, address: str | None = None, *, timeout: float = 2.0,
                 facility: int = FACILITY_AUTHPRIV, app: str = "keykeeper") -> None:
        if not address:
            address = "unix:///dev/log" if os.path.exists("/dev/log") else "udp://127.0.0.1:514"
        if address.startswith("/"):
            address = "unix://" + address
        parts = urlsplit(address)
        if parts.scheme not in ("udp", "tcp", "unix"):
            raise ValueError(f"syslog address must be udp://, tcp:// or unix://, got {address!r}")
        if parts.scheme != "unix" and not (parts.hostname and parts.port):
            raise ValueError(f"syslog address needs a host and a port: {address!r}")
        self.address = address
        self._scheme = parts.scheme
        self._target: str | tuple[str, int] = (
            parts.path if parts.scheme == "unix" else (parts.hostname or "", parts.port or 514))
        self._timeout = timeout
        self._facility = facility
        self._app = app
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            if self._scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            else:
                assert isinstance(self._target, tuple)
                family = socket.getaddrinfo(self._target[0], self._target[1])[0][0]
                kind = socket.SOCK_STREAM if self._scheme == "tcp" else socket.SOCK_DGRAM
                sock = socket.socket(family, kind)
            sock.settimeout(self._timeout)
            try:
                sock.connect(self._target)
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def _message(self, entry: Entry) -> bytes:
        rec = entry.record
        severity = INFO if rec.outcome != "error" else WARNING
        pri = self._facility * 8 + severity
        if self._scheme == "unix":
            return f"<{pri}>{self._app}[{self._pid}]: ".encode() + entry.line
        stamp = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return (f"<{pri}>1 {stamp} {self._host} {self._app} {self._pid} audit - ".encode()
                + entry.line)

    def write_batch(self, entries: Sequence[Entry]) -> None:
        try:
            sock = self._connect()
            if self._scheme == "tcp":
                sock.sendall(b"".join(
                    str(len(m)).encode() + b" " + m for m in map(self._message, entries)))
            else:
                for entry in entries:
                    sock.send(self._message(entry))
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
