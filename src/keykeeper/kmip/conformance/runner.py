"""Replay the OASIS KMIP Profiles test cases against a live KMIP server over TLS.

One test-case file (KMIP XML, root ``<KMIP>``, Request and Response Messages alternating)
is one run on one new connection: each Request Message is bound (bind.py), sent as binary
TTLV over TLS (KMIP 2.1 §9.1) -- the MSGENC files, given an HTTPS address, go to
``POST /kmip`` in their own encoding (transport.py) --, and the answer is compared with
the expected Response Message (compare.py). The file passes when every answer matches;
it fails at the first mismatch, unreadable answer or lost connection (the result says
which step and where); it is skipped when the skip list names it. After a failure the
runner revokes and destroys the objects the file had bound (best effort), so that later
files' Locate answers are not disturbed.

Pure: stdlib, ssl and keykeeper.kmip.ttlv only (the CLI runs it against any server).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from keykeeper.kmip.conformance.bind import Bindings, UnboundPlaceholder
from keykeeper.kmip.conformance.compare import compare_response
from keykeeper.kmip.conformance.report import profile_of
from keykeeper.kmip.conformance.transport import (
    Connection,
    Encoding,
    HttpsConnection,
    Target,
    TtlvConnection,
)
from keykeeper.kmip.ttlv import Item, ItemType, TtlvError
from keykeeper.kmip.ttlv.enums import Operation, RevocationReasonCode
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.ttlv.xml import iter_xml_messages

__all__ = [
    "Connection",
    "FileResult",
    "Status",
    "Target",
    "case_files",
    "load_list",
    "run_file",
    "run_paths",
]

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's outcome. ``detail``: for failed, the step (1-based Request Message) and
    first mismatch; for skipped, the skip list's reason; empty for passed."""

    name: str
    profile: str
    status: Status
    detail: str = ""
    steps: int = 0


def load_list(path: Path | None) -> dict[str, str]:
    """A TOML list ``"FILE.xml" = "reason"`` (the skip list, the expected-failure list):
    file name -> reason. None gives an empty list. Raises ValueError for a value that is
    not a string, OSError/tomllib.TOMLDecodeError for an unreadable file."""
    if path is None:
        return {}
    with open(path, "rb") as f:
        data = tomllib.load(f)
    out: dict[str, str] = {}
    for name, reason in data.items():
        if not isinstance(reason, str):
            raise ValueError(f"{path}: {name}: the reason must be a string")
        out[name] = reason
    return out


def case_files(paths: Iterable[Path], profile: str | None = None) -> list[Path]:
    """The ``*.xml`` files in ``paths`` (directories, searched recursively, or files), in
    name order, only those whose profile (report.profile_of) starts with ``profile``."""
    found: list[Path] = []
    for p in paths:
        found.extend(sorted(p.rglob("*.xml")) if p.is_dir() else [p])
    if profile:
        found = [f for f in found if profile_of(f.name).startswith(profile)
                 or f.name.startswith(profile)]
    return found


def run_paths(paths: Iterable[Path], target: Target, *, skips: dict[str, str] | None = None,
              profile: str | None = None) -> list[FileResult]:
    """Run every test-case file under ``paths`` (see case_files) against ``target``, in
    order, sharing what the server generated (see run_file)."""
    generated: set[str] = set()
    return [run_file(f, target, skips=skips, generated=generated)
            for f in case_files(paths, profile)]


def run_file(path: Path, target: Target, *, skips: dict[str, str] | None = None,
             generated: set[str] | None = None) -> FileResult:
    """Run one test-case file (see the module docstring). ``generated``: Unique
    Identifiers of objects the server generated in earlier files of the same run (TL-M-3
    gets the key TL-M-2 created), updated with this file's. Never raises for a server's
    behaviour or a malformed file: both are a failed result."""
    name, profile = path.name, profile_of(path.name)
    if skips and name in skips:
        return FileResult(name, profile, "skipped", skips[name])
    try:
        pairs = _pairs(iter_xml_messages(path.read_text(encoding="utf-8")))
    except (TtlvError, ValueError, OSError) as exc:
        return FileResult(name, profile, "failed", f"unreadable test case: {exc}")
    shared = generated if generated is not None else set()
    bindings = Bindings(generated=set(shared))
    try:
        conn = _connect(name, target)
    except OSError as exc:
        return FileResult(name, profile, "failed", f"cannot connect: {exc}")
    try:
        for step, (request, expected) in enumerate(pairs, 1):
            detail = _step(conn, request, expected, bindings)
            shared.update(bindings.generated)
            if detail is not None:
                _clean_up(conn, bindings, _version(pairs[0][0]))
                return FileResult(name, profile, "failed", f"step {step}: {detail}", step)
        return FileResult(name, profile, "passed", "", len(pairs))
    finally:
        conn.close()


_MSGENC: dict[str, Encoding] = {"MSGENC-HTTPS-": "ttlv", "MSGENC-JSON-": "json",
                                "MSGENC-XML-": "xml"}


def _connect(name: str, target: Target) -> Connection:
    """HTTPS in the file's encoding for the MSGENC files when ``target.https`` is set,
    else binary TTLV on the KMIP port."""
    for prefix, encoding in _MSGENC.items():
        if name.startswith(prefix) and target.https is not None:
            return HttpsConnection(target, encoding)
    return TtlvConnection(target)


def _step(conn: Connection, request: Item, expected: Item, b: Bindings) -> str | None:
    now = int(time.time())
    try:
        bound = b.bind_request(request, now)
    except UnboundPlaceholder as exc:
        return str(exc)
    try:
        actual = conn.call(bound)
    except TtlvError as exc:
        return f"malformed answer: {exc}"
    except OSError as exc:
        return f"connection lost: {type(exc).__name__}: {exc}"
    mismatch = compare_response(expected, actual, bound, b, now)
    return None if mismatch is None else str(mismatch)


def _pairs(messages: Sequence[Item]) -> list[tuple[Item, Item]]:
    if not messages or len(messages) % 2:
        raise ValueError(f"{len(messages)} messages: expected Request/Response pairs")
    pairs = list(zip(messages[::2], messages[1::2], strict=True))
    for req, resp in pairs:
        if req.tag != Tag.REQUEST_MESSAGE or resp.tag != Tag.RESPONSE_MESSAGE:
            raise ValueError("messages do not alternate RequestMessage, ResponseMessage")
    return pairs


def _version(request: Item) -> tuple[int, int]:
    header = request.find(Tag.REQUEST_HEADER)
    pv = header.find(Tag.PROTOCOL_VERSION) if header is not None else None
    if pv is None:
        return (1, 0)
    major, minor = pv.find(Tag.PROTOCOL_VERSION_MAJOR), pv.find(Tag.PROTOCOL_VERSION_MINOR)
    return (major.value if major is not None and isinstance(major.value, int) else 1,
            minor.value if minor is not None and isinstance(minor.value, int) else 0)


def _message(version: tuple[int, int], op: int, payload: list[Item]) -> Item:
    pv = Item.structure(Tag.PROTOCOL_VERSION, [
        Item(Tag.PROTOCOL_VERSION_MAJOR, ItemType.INTEGER, version[0]),
        Item(Tag.PROTOCOL_VERSION_MINOR, ItemType.INTEGER, version[1])])
    header = Item.structure(Tag.REQUEST_HEADER,
                            [pv, Item(Tag.BATCH_COUNT, ItemType.INTEGER, 1)])
    batch = Item.structure(Tag.BATCH_ITEM, [
        Item(Tag.OPERATION, ItemType.ENUMERATION, op),
        Item.structure(Tag.REQUEST_PAYLOAD, payload)])
    return Item.structure(Tag.REQUEST_MESSAGE, [header, batch])


def _clean_up(conn: Connection, b: Bindings, version: tuple[int, int]) -> None:
    """Revoke, then destroy, every object the file bound (results ignored)."""
    for uid in reversed(b.uids):
        uid_item = Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, uid)
        reason = Item.structure(Tag.REVOCATION_REASON, [Item(
            Tag.REVOCATION_REASON_CODE, ItemType.ENUMERATION,
            int(RevocationReasonCode.CESSATION_OF_OPERATION))])
        try:
            conn.call(_message(version, int(Operation.REVOKE), [uid_item, reason]))
            conn.call(_message(version, int(Operation.DESTROY), [uid_item]))
        except (OSError, TtlvError):
            return
