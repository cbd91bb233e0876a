"""The read side of the audit trail for the audit API: chain heads, record hashes, the
checkpoint public key, value HMACs, the database query, and server-side verification.

A mixin of :class:`keykeeper.service.audit.Auditor`, kept apart so each module stays
small; it reads the Auditor's chain state and never writes records.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from pathlib import Path

from keykeeper.audit.chain import AuditKeys, Chain, ChainHead
from keykeeper.audit.verify import Head, Report, line_hash, verify_sources
from keykeeper.audit.writer import SinkWorker
from keykeeper.errors import NotFound, Sealed, Unavailable
from keykeeper.service.audit_db import AuditSearch
from keykeeper.store.audit_records import AuditFilter, AuditRow

__all__ = ["AuditReads"]


class AuditReads(ABC):
    """Heads, hashes, keys, search and verification (mixed into the Auditor)."""

    chain: Chain
    search: AuditSearch | None
    _required: list[SinkWorker]
    _start_head: ChainHead
    _recent: deque[str]
    _lock: threading.Lock
    _files: Callable[[], list[Path]] | None

    @abstractmethod
    def keys(self) -> AuditKeys | None:
        """The audit keys of the unsealed root key (None while sealed): the Auditor's."""

    def _require_keys(self) -> AuditKeys:
        keys = self.keys()
        if keys is None:
            raise Sealed("keykeeper is sealed")
        return keys

    def written_head(self) -> ChainHead:
        """This process's chain head as far as its first required sink has written it."""
        worker = self._required[0] if self._required else None
        entry = worker.last_written if worker is not None else None
        if entry is None:
            return self._start_head
        rec = entry.record
        checkpoint = self.chain.checkpoint
        return ChainHead(rec.chain, rec.seq, line_hash(entry.line),
                         checkpoint if checkpoint is not None and checkpoint <= rec.seq else
                         None)

    def head(self, chain: str | None = None) -> ChainHead:
        """The head of ``chain`` (default: this process's): from memory for this process's
        chain, else from the database table. NotFound if unknown."""
        if chain is None or chain == self.chain.id:
            return self.written_head()
        if self.search is not None:
            row = self.search.head(chain)
            if row is not None:
                return ChainHead(row.chain, row.seq, line_hash(row.record.encode()), None)
        raise NotFound(f"audit chain '{chain}' not found")

    def query(self, flt: AuditFilter, page_size: int | None, page_token: str | None, *,
              newest_first: bool = True) -> tuple[list[AuditRow], str | None]:
        """One page of the database table's records (every node's); see AuditSearch."""
        if self.search is None:
            raise Unavailable("audit search needs the database (KEYKEEPER_AUDIT_SINKS "
                              "with 'database' on the nodes that record)")
        return self.search.search(flt, page_size, page_token, newest_first=newest_first)

    def record_hash(self, chain: str | None, seq: int) -> ChainHead:
        """The line hash of record ``seq`` of ``chain`` (default: this process's), from
        memory for this process's recent records, else from the database table. NotFound
        if it is not known, or not yet written."""
        own = chain is None or chain == self.chain.id
        if own:
            if seq < 1 or seq > self.written_head().seq:
                raise NotFound(f"seq {seq} of audit chain '{self.chain.id}' has not been "
                               "written")
            with self._lock:
                first = self.chain.seq - len(self._recent) + 1
                if seq >= first:
                    return ChainHead(self.chain.id, seq, self._recent[seq - first], None)
        if self.search is not None:
            row = self.search.record(chain or self.chain.id, seq)
            if row is not None:
                return ChainHead(row.chain, row.seq, line_hash(row.record.encode()), None)
        raise NotFound(f"seq {seq} of audit chain '{chain or self.chain.id}' is not known "
                       "here")

    def public_key_pem(self) -> str:
        """PEM of the checkpoint public key; Sealed while sealed."""
        return self._require_keys().public_pem()

    def hash_value(self, value: str) -> str:
        """``hmac-sha256:<hex>`` of ``value`` as records hold it; Sealed while sealed."""
        return self._require_keys().field(value)

    def verify(self, *, from_checkpoint: bool = False) -> Report:
        """Verify this node's audit files (all its slots and rotated files) with the HMAC
        key and the pinned public key, against the known chain heads: this process's chain
        must be in them up to its written head, so files deleted, emptied or replaced
        (by a symbolic link to /dev/null, say) show as ``truncated``."""
        keys = self._require_keys()
        heads: dict[str, Head] = {}
        own = self.written_head()
        if own.seq and self._files is not None:  # None: this process writes no file
            heads[own.chain] = Head(own.chain, own.seq, own.hash)
        paths = self._files() if self._files is not None else []
        sources: list[tuple[str, list[bytes]]] = []
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise Unavailable(f"cannot read the audit file {path.name}: "
                                  f"{exc.strerror}") from None
            cut = data.rfind(b"\n")  # a record being written right now is left out
            sources.append((str(path), data[:cut + 1].splitlines(keepends=True)))
        return verify_sources(sources, public_key=keys.public_raw, hmac_key=keys.record_key,
                              from_checkpoint=from_checkpoint, heads=heads)
