"""Append-only JSON-lines audit file (one record per line, written and flushed per request)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import msgspec

from keykeeper.audit.records import AuditRecord

__all__ = ["FileAuditSink"]


class FileAuditSink:
    """Writes each record as one JSON line with ``O_APPEND``; safe across threads and workers."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder()

    def write(self, record: AuditRecord) -> None:
        line = self._encoder.encode(record) + b"\n"
        with self._lock:
            os.write(self._fd, line)

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)
