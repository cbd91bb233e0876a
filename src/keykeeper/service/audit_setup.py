"""Builds the audit trail of one server process (called by config.py, the composition root).

Steps: parse the sink list; take a file slot (one chain per process); read the tail of
the slot's file to continue its chain; compare with the database's head of that chain;
create the sinks with their policies and timeouts; and, if the chain cannot continue,
start a new segment -- a chain ``<id>~<UTC time>`` whose first record
(``audit.segment``) says why -- and alert.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from keykeeper.audit.chain import Chain
from keykeeper.audit.file_sink import (
    FileAuditSink,
    Slot,
    Tail,
    TailUnreadable,
    acquire_slot,
    node_files,
    slot_path,
)
from keykeeper.audit.sinkspec import DEFAULT_SINKS, SinkSpec, parse_sinks
from keykeeper.audit.syslog_sink import SyslogAuditSink
from keykeeper.audit.webhook_sink import WebhookAuditSink
from keykeeper.errors import InvalidArgument
from keykeeper.service.audit import Auditor, SinkConfig, default_node_id
from keykeeper.service.audit_db import AuditSearch, DatabaseAuditSink
from keykeeper.service.deps import Deps

__all__ = ["AuditSettings", "build_auditor"]

log = logging.getLogger("keykeeper.audit")
_NODE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class AuditSettings:
    """The audit part of the server settings (environment variables in config.py)."""

    file: Path                              # KEYKEEPER_AUDIT_FILE
    sinks: str = DEFAULT_SINKS              # KEYKEEPER_AUDIT_SINKS
    node_id: str = ""                       # KEYKEEPER_NODE_ID (default: host name)
    timeout: float = 2.0                    # KEYKEEPER_AUDIT_TIMEOUT, seconds
    max_bytes: int = 100 * 1024 * 1024      # KEYKEEPER_AUDIT_MAX_BYTES (0: no rotation)
    checkpoint_seconds: float = 60.0        # KEYKEEPER_AUDIT_CHECKPOINT_SECONDS


class _Relay:
    """Alerts raised while the Auditor is being built are replayed once it exists."""

    def __init__(self) -> None:
        self.auditor: Auditor | None = None
        self.early: list[tuple[str, str]] = []

    def alert(self, kind: str, detail: str) -> None:
        if self.auditor is None:
            self.early.append((kind, detail))
        else:
            self.auditor.alert(kind, detail)

    def checkpoint(self) -> bool:
        return self.auditor is not None and self.auditor.checkpoint("rotate")


def _base(chain: str) -> str:
    return chain.split("~", 1)[0]


def _start(chain_id: str, tail: Tail | None, unreadable: str | None,
           db_head: tuple[int, str] | None) -> tuple[Chain, str | None, str | None]:
    """The chain to continue, or a new segment: (chain, alert kind, why)."""
    if tail is not None:
        return Chain(tail.chain, tail.seq, tail.hash, tail.seq if tail.checkpoint else None), \
            None, None
    if unreadable is not None:
        return Chain(f"{chain_id}~{_stamp()}"), "tail_unreadable", (
            f"chain {chain_id} could not be continued: {unreadable}")
    if db_head is not None:
        return Chain(f"{chain_id}~{_stamp()}"), "file_lost", (
            f"the audit file holds no record of chain {db_head[1]}, whose records reach seq "
            f"{db_head[0]} in the database: the file was deleted, emptied or replaced")
    return Chain(chain_id), None, None


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


BEST_EFFORT_LINGER = 0.2  # seconds a best-effort sink gathers records into one batch


def _sink(spec: SinkSpec, deps: Deps, timeout: float) -> SinkConfig:
    wait = spec.timeout or timeout
    linger = 0.0 if spec.required else BEST_EFFORT_LINGER
    if spec.kind == "database":
        return SinkConfig(DatabaseAuditSink(deps), spec.name, spec.required, wait, 2000, linger)
    if spec.kind == "syslog":
        return SinkConfig(SyslogAuditSink(spec.target, timeout=wait), spec.name,
                          spec.required, wait, 500, linger)
    assert spec.kind == "webhook" and spec.target
    return SinkConfig(WebhookAuditSink(spec.target, timeout=wait), spec.name, spec.required,
                      wait, 2000, linger)


def build_auditor(settings: AuditSettings, deps: Deps, *, clock: Callable[[], datetime],
                  on_alert: Callable[[str], None] | None = None) -> Auditor:
    """The Auditor of this process. Raises InvalidArgument for a bad sink list, OSError
    if the audit file or a slot cannot be opened."""
    try:
        specs = parse_sinks(settings.sinks)
    except ValueError as exc:
        raise InvalidArgument(f"KEYKEEPER_AUDIT_SINKS: {exc}") from None
    if not specs:
        log.warning("AUDIT IS OFF (KEYKEEPER_AUDIT_SINKS=none): for benchmarks only")
        return Auditor([], clock)
    if settings.max_bytes < 0 or not 0 < settings.timeout <= 300 \
            or settings.checkpoint_seconds < 0:
        raise InvalidArgument("KEYKEEPER_AUDIT_MAX_BYTES must be >= 0, "
                              "KEYKEEPER_AUDIT_TIMEOUT in (0, 300] seconds and "
                              "KEYKEEPER_AUDIT_CHECKPOINT_SECONDS >= 0 (0: none)")
    node = settings.node_id or re.sub(r"[^A-Za-z0-9._-]", "-", default_node_id())[:64]
    if not _NODE_ID.fullmatch(node):
        raise InvalidArgument("KEYKEEPER_NODE_ID must match [A-Za-z0-9._-]{1,64}")
    relay = _Relay()
    slot: Slot | None = acquire_slot(settings.file) if any(
        s.kind == "file" for s in specs) else None
    number = slot.number if slot is not None else 0
    chain_id = node + (f".{number}" if number else "")
    sinks: list[SinkConfig] = []
    primary: FileAuditSink | None = None
    primary_base = settings.file   # the first file sink's path, as configured (slot 0)
    try:
        for spec in specs:
            if spec.kind == "file":
                base = Path(spec.target) if spec.target else settings.file
                sink = FileAuditSink(slot_path(base, number), max_bytes=settings.max_bytes,
                                     on_alert=relay.alert,
                                     request_checkpoint=relay.checkpoint,
                                     slot=slot if primary is None else None)
                if primary is None:
                    primary, primary_base = sink, base
                # A required local file is written by the waiting thread while its
                # writer is idle (SinkWorker.claim): the least CPU per audited request.
                sinks.append(SinkConfig(sink, spec.name, spec.required,
                                        spec.timeout or settings.timeout,
                                        inline=spec.required))
            else:
                sinks.append(_sink(spec, deps, settings.timeout))
    except (OSError, ValueError) as exc:
        if slot is not None:
            slot.release()
        raise InvalidArgument(f"audit sink: {exc}") from None
    sinks.sort(key=lambda c: not isinstance(c.sink, FileAuditSink))  # files first (the head)

    tail, unreadable = None, None
    if primary is not None:
        try:
            tail = primary.tail()
        except TailUnreadable as exc:
            unreadable = str(exc)
    if tail is not None and _base(tail.chain) != chain_id:
        log.warning("audit: %s ends with chain %s; this process writes chain %s",
                    primary.path if primary else "", tail.chain, chain_id)
        tail = None   # another node id (renamed node): not ours to continue
    search = AuditSearch(deps)
    db_head: tuple[int, str] | None = None
    try:
        row = search.head(tail.chain if tail is not None else chain_id)
        if row is not None:
            db_head = (row.seq, row.chain)
    except Exception:  # an unmigrated or unreachable database: nothing to compare
        log.warning("audit: the database head of chain %s could not be read", chain_id)
    if tail is not None and db_head is not None and db_head[0] > tail.seq:
        unreadable = (f"the file ends at seq {tail.seq} but the database holds chain "
                      f"{db_head[1]} up to seq {db_head[0]}: the file was truncated")
        tail = None
    chain, kind, why = _start(chain_id, tail, unreadable, db_head)
    auditor = Auditor(sinks, clock, custody=deps.custody, chain=chain, timeout=settings.timeout,
                      checkpoint_seconds=settings.checkpoint_seconds, on_alert=on_alert,
                      files=(lambda: node_files(primary_base)) if primary is not None
                      else None, search=search)
    relay.auditor = auditor
    if kind is not None and why is not None:
        auditor.start_segment(why)
        auditor.alert(kind, why)
    for early in relay.early:
        auditor.alert(*early)
    return auditor
