"""``keykeeper audit ...``: verify audit files (offline), search and tail the audit records,
write a checkpoint on request.

``verify`` runs the pure verifier (keykeeper.audit.verify) on local copies of the files:
no server is needed. When a server answers at ``--addr`` (and the token may read the
audit), ``verify`` also pins the checkpoint public key from it (unless ``--public-key``
is given) and compares each chain with the server's head, which detects truncation
after the last checkpoint. ``--offline`` skips the server.

The order of the server requests matters (docs/audit-format.md, Verifying): the heads
are read first -- before any other request of ours, so that none of our own audit
records is in them -- and the files after, so that a live file must hold each head.

Exit status of ``verify``: 0 when no problem was found, 1 with one line per problem.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import msgspec
import typer

from keykeeper.audit.verify import (
    ChainSummary,
    Head,
    Report,
    load_public_key,
    verify_sources,
)
from keykeeper.cli._state import emit_fields, emit_json, emit_table, get_state, stderr
from keykeeper.client import AuditRecord, Client, ConnectionFailed
from keykeeper.errors import KeykeeperError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

_SERVER_TIMEOUT = 5.0
T = TypeVar("T")


class _Chained(msgspec.Struct):
    chain: str
    seq: int


_decoder = msgspec.json.Decoder(_Chained)


def _last_seqs(sources: Iterable[tuple[str, list[bytes]]]) -> dict[str, int]:
    """The highest seq of each chain found in the lines."""
    last: dict[str, int] = {}
    for _, lines in sources:
        for line in lines:
            try:
                rec = _decoder.decode(line)
            except msgspec.DecodeError:
                continue
            last[rec.chain] = max(last.get(rec.chain, 0), rec.seq)
    return last


def _read(paths: Iterable[Path]) -> list[tuple[str, list[bytes]]]:
    return [(str(p), p.read_bytes().splitlines(keepends=True)) for p in paths]


class _Server:
    """What a reachable server can vouch for: its key, chain heads and record hashes.
    Every failure becomes a note; the verification itself never needs the server."""

    def __init__(self, ctx: typer.Context, notes: list[str]) -> None:
        state = get_state(ctx)
        self.notes = notes
        self.client: Client | None = Client(state.addr, state.token, timeout=_SERVER_TIMEOUT,
                                            transport=state.transport)

    def _call(self, what: str, fn: Callable[[Client], T]) -> T | None:
        if self.client is None:
            return None
        try:
            return fn(self.client)
        except ConnectionFailed as exc:
            self.notes.append(f"server not reached ({exc.detail}): nothing compared with it")
            self.close()
        except KeykeeperError as exc:
            self.notes.append(f"{what}: the server answered {exc.code}")
        return None

    def public_key(self) -> bytes | None:
        pem = self._call("public key", lambda kk: kk.audit_public_key())
        if pem is None or self.client is None:
            return None
        self.notes.append(f"public key pinned from the server at {self.client.addr}")
        return load_public_key(pem)

    def heads(self, last: dict[str, int], by_seq: bool = False) -> dict[str, Head]:
        """Each chain's head (or, ``by_seq``, the hash of record ``last[chain]``).

        Heads: the answering process's own chain is asked first (``GET /v1/audit/head``
        without a chain), so that it holds none of our own records -- a request's record
        is written after its answer is computed. Every later request of ours lands in that
        chain after its head was read (one connection, one server process)."""
        found: dict[str, Head] = {}
        if not by_seq and last:
            own = self._call("head", lambda kk: kk.audit_head())
            if own is not None and own.chain in last and own.seq:
                found[own.chain] = Head(own.chain, own.seq, own.hash)
        for chain, seq in sorted(last.items()):
            if chain in found:
                continue
            wanted = seq if by_seq else None
            h = self._call(f"chain {chain}" + (f" seq {seq}" if by_seq else " head"),
                           lambda kk, c=chain, s=wanted: kk.audit_head(c, seq=s))  # type: ignore[misc]
            if h is not None and h.seq:
                found[chain] = Head(h.chain, h.seq, h.hash)
        return found

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


@app.command("verify")
def verify(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Audit files: a chain's rotated files in "
                                       "any order, several chains at once.", exists=True,
                                       dir_okay=False, readable=True),
    public_key: Path | None = typer.Option(
        None, "--public-key", exists=True, dir_okay=False,
        help="PEM of the checkpoint key (GET /v1/audit/public-key) to pin."),
    from_checkpoint: bool = typer.Option(
        False, "--from-checkpoint",
        help="Start each chain at its first checkpoint (a rotated-in file)."),
    to_checkpoint: bool = typer.Option(
        False, "--to-checkpoint",
        help="End each chain at its last checkpoint (a copy of a live file, taken after "
        "'keykeeper audit checkpoint'); the records after it are left out, not verified."),
    offline: bool = typer.Option(False, "--offline",
                                 help="Do not ask a server for its key and chain heads."),
) -> None:
    """Verify audit files: hash chain, sequence, checkpoint signatures, truncation."""
    notes: list[str] = []
    pinned: bytes | None = None
    if public_key is not None:
        try:
            pinned = load_public_key(public_key.read_bytes())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--public-key") from None
    heads: dict[str, Head] = {}
    confirmed: dict[str, Head] = {}
    if offline:
        sources = _read(files)
    else:
        # Heads first -- before any other request of ours, whose audit records would
        # otherwise count as written before the files were read -- then read the files
        # (they must hold each head: else truncated), then ask for the hash of each
        # chain's last record read (else forged or altered). --to-checkpoint compares
        # nothing past the cut: only the key is asked for.
        server = _Server(ctx, notes)
        try:
            if not to_checkpoint:
                heads = server.heads(_last_seqs(_read(files)))
            if pinned is None:
                pinned = server.public_key()
            sources = _read(files)
            if not to_checkpoint:
                confirmed = server.heads(_last_seqs(sources), by_seq=True)
        finally:
            server.close()
    report = verify_sources(sources, public_key=pinned, from_checkpoint=from_checkpoint,
                            to_checkpoint=to_checkpoint, heads=heads, confirmed=confirmed)
    report.notes[:0] = notes
    _emit_report(ctx, report)
    if not report.ok:
        raise typer.Exit(1)


def _emit_report(ctx: typer.Context, report: Report) -> None:
    if get_state(ctx).json:
        emit_json(report.to_builtins())
        return
    for problem in report.problems:
        typer.echo(str(problem))
    for note in report.notes:
        stderr(f"note: {note}")
    for c in report.chains:
        signed = f"signed through seq {c.signed_through}" if c.signed_through else "unsigned"
        stderr(f"chain {c.chain}: {c.records} records, seq {c.first_seq}..{c.last_seq}, "
               f"{c.checkpoints} checkpoint(s), {signed}{_server_view(c)}")
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    stderr(f"{verdict}: {report.records} records in {len(report.files)} file(s)")


def _server_view(c: ChainSummary) -> str:
    """What the server said of the chain: its head, and the last seq it vouched for.
    "matches" only when the head itself is in the files with the same hash."""
    head, confirmed, last = c.server_head, c.head_confirmed, c.last_seq or 0
    if head is not None and confirmed is not None and confirmed >= head:
        return f", server head seq {head} matches"
    parts = []
    if confirmed is not None:
        parts.append(f"seq {confirmed} matches the server's record")
    if head is not None:
        parts.append(f"the server's head is seq {head}" +
                     (" (past the end of these files)" if head > last else ""))
    return ", " + "; ".join(parts) if parts else ""


@app.command("checkpoint")
def checkpoint(ctx: typer.Context) -> None:
    """Sign the answering server process's audit chain now (needs audit.verify).

    Then copy the audit file: the copy verifies offline up to this checkpoint
    (verify --offline --public-key PEM --to-checkpoint)."""
    with get_state(ctx).client() as kk:
        h = kk.audit_checkpoint()
    if get_state(ctx).json:
        emit_json(h)
    else:
        emit_fields([("chain", h.chain), ("seq", h.seq), ("hash", h.hash)])


_COLUMNS = ("time", "chain", "seq", "operation", "principal", "outcome", "key", "request")


def _row(r: AuditRecord) -> list[object]:
    outcome = r.outcome if r.outcome != "error" else f"error:{r.error_code}"
    if r.execution is not None:  # an approving call that ran the approved request
        outcome += f" ({r.execution})"
    key = f"{r.key_id}" + (f" v{r.key_version}" if r.key_version else "") if r.key_id else None
    return [r.time.isoformat().replace("+00:00", "Z"), r.chain, r.seq,
            r.operation + (f" ({r.phase})" if r.phase else ""), r.principal, outcome, key,
            r.request_id]


def _emit_records(ctx: typer.Context, records: list[AuditRecord]) -> None:
    if get_state(ctx).json:
        emit_json(records)
    else:
        emit_table(_COLUMNS, [_row(r) for r in records])


def _filters(principal: str | None, key: str | None, operation: str | None,
             outcome: str | None, chain: str | None, approval: str | None = None,
             execution: str | None = None) -> dict[str, object]:
    return {"principal": principal, "key": key, "operation": operation, "outcome": outcome,
            "chain": chain, "approval_id": approval, "execution": execution}


PRINCIPAL = typer.Option(None, "--principal", help="Only records of this principal.")
KEY = typer.Option(None, "--key", help="Only records of this key (id, namespace:name, name).")
OPERATION = typer.Option(None, "--operation", help="e.g. encrypt, key.create, key.*")
OUTCOME = typer.Option(None, "--outcome",
                       help="success, error, pending, requested, or an error code (an "
                       "approval whose execution failed counts as that error).")
CHAIN = typer.Option(None, "--chain", help="Only this chain (node id[.slot]).")
APPROVAL = typer.Option(None, "--approval", help="Only records of this approval request.")
EXECUTION = typer.Option(None, "--execution",
                         help="Approving calls that ran a request: executed, failed, or "
                         "failed:<code>.")


@app.command("search")
def search(
    ctx: typer.Context,
    principal: str | None = PRINCIPAL,
    key: str | None = KEY,
    operation: str | None = OPERATION,
    outcome: str | None = OUTCOME,
    chain: str | None = CHAIN,
    approval: str | None = APPROVAL,
    execution: str | None = EXECUTION,
    request_id: str | None = typer.Option(None, "--request-id"),
    since: str | None = typer.Option(None, "--since",
                                     help="RFC 3339 time, or a duration ago (1h, 7d)."),
    until: str | None = typer.Option(None, "--until", help="As --since (exclusive)."),
    limit: int = typer.Option(100, "--limit", min=1, help="Records to show at most."),
) -> None:
    """Search the audit records of every node (newest first)."""
    records: list[AuditRecord] = []
    with get_state(ctx).client() as kk:
        for record in kk.iter_audit(**_filters(principal, key, operation, outcome, chain,
                                               approval, execution),
                                    request_id=request_id, since=since, until=until,
                                    page_size=min(limit, 1000)):
            records.append(record)
            if len(records) >= limit:
                break
    _emit_records(ctx, records)


@app.command("tail")
def tail(
    ctx: typer.Context,
    lines: int = typer.Option(20, "-n", "--lines", min=1, max=1000,
                              help="Records to show first."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Then print new records "
                                "(but not the audit.search records of its own polls)."),
    interval: float = typer.Option(1.0, "--interval", min=0.1, help="Seconds between polls."),
    principal: str | None = PRINCIPAL,
    key: str | None = KEY,
    operation: str | None = OPERATION,
    outcome: str | None = OUTCOME,
    chain: str | None = CHAIN,
    approval: str | None = APPROVAL,
    execution: str | None = EXECUTION,
) -> None:
    """The latest audit records, oldest first; with --follow, new ones as they come.

    With --follow, the records of this command's own searches (one per poll) are not
    printed; they stay in the audit trail (recognised by their request ids)."""
    filters = _filters(principal, key, operation, outcome, chain, approval, execution)
    state = get_state(ctx)
    with state.client() as kk:
        own = _OwnRequests(kk)
        page = kk.audit_search(page_size=lines, **filters)  # type: ignore[arg-type]
        own.note()
        records = list(reversed(page.records))
        _emit_records(ctx, records)
        if not follow:
            return
        # ``since`` is inclusive: remember the records at the latest time already shown.
        seen = {(r.chain, r.seq): r.time for r in records}
        since = max(seen.values(), default=None)
        while True:
            time.sleep(interval)
            fresh = [r for r in own.search(since=since, oldest_first=True, **filters)
                     if (r.chain, r.seq) not in seen]
            if not fresh:
                continue
            seen.update({(r.chain, r.seq): r.time for r in fresh})
            since = max(seen.values())
            seen = {k: t for k, t in seen.items() if t == since}
            shown = [r for r in fresh if not own.mine(r)]
            if state.json:
                for r in shown:
                    typer.echo(msgspec.json.encode(r).decode())
            else:
                for r in shown:
                    typer.echo("  ".join("-" if v is None else str(v) for v in _row(r)))


class _OwnRequests:
    """The request ids of a follower's own searches, so that their audit records (each
    poll writes one, seen by a later poll) are not printed. Bounded: an id whose record
    never comes (filtered out) is forgotten after ``limit`` more."""

    def __init__(self, kk: Client, limit: int = 10_000) -> None:
        self._kk = kk
        self._ids: dict[str, None] = {}
        self._limit = limit

    def note(self) -> None:
        rid = self._kk.last_request_id
        if rid:
            self._ids[rid] = None
            while len(self._ids) > self._limit:
                del self._ids[next(iter(self._ids))]

    def search(self, **filters: object) -> Iterator[AuditRecord]:
        """As ``iter_audit``, noting the id of every page's request."""
        token: str | None = None
        while True:
            page = self._kk.audit_search(page_token=token, **filters)  # type: ignore[arg-type]
            self.note()
            yield from page.records
            token = page.next_page_token
            if not token:
                return

    def mine(self, record: AuditRecord) -> bool:
        if record.operation != "audit.search" or record.request_id not in self._ids:
            return False
        del self._ids[record.request_id]  # seen once: it is never fresh again
        return True


@app.command("head")
def head(ctx: typer.Context, chain: str | None = typer.Option(None, "--chain")) -> None:
    """The server's head of a chain (default: the answering process's)."""
    with get_state(ctx).client() as kk:
        h = kk.audit_head(chain)
    if get_state(ctx).json:
        emit_json(h)
    else:
        emit_fields([("chain", h.chain), ("seq", h.seq), ("hash", h.hash),
                     ("checkpoint", h.checkpoint)])


@app.command("public-key")
def public_key_(ctx: typer.Context) -> None:
    """The PEM public key that signs audit checkpoints (pin it for offline verify)."""
    with get_state(ctx).client() as kk:
        typer.echo(kk.audit_public_key(), nl=False)


@app.command("hash")
def hash_(ctx: typer.Context, value: str = typer.Argument(..., help="A token or context "
                                                           "value to look for.")) -> None:
    """The HMAC of a value as audit records hold tokens and context values."""
    with get_state(ctx).client() as kk:
        typer.echo(kk.audit_hash(value))
