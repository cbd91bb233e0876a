"""One Request Message in, one Response Message out (KMIP 2.1 §8, §9 "Message
Functionality"), for both transports: the mutual-TLS listener (kmip/server.py) and
``POST /kmip`` (rest/kmip_route.py).

Per message: parse it (Invalid_Message for a malformed one, answered in the request's
version when that was readable, else the highest), refuse an unsupported Protocol
Version (answered in the highest supported version not above the request's, with
Unsupported_Protocol_Version where that version defines it, else Invalid_Message),
authenticate the caller once (the transport's ``authenticate``: client
certificate or REST credentials; a failure fails every batch item with
Authentication_Not_Successful), then serve the batch items in order:

* Asynchronous Indicator true: every item Operation_Not_Supported (keykeeper answers
  synchronously only).
* Batch Error Continuation Option (KMIP 2.1 §8.2): Stop (the default) ends the batch at
  the first failure -- the answer holds the items served so far; Continue serves every
  item; Undo serves the batch in one transaction of the key store and, at the first
  failure, rolls it back: the items served before it answer Operation_Undone
  (kmip/undo.py). A refusal of the whole message (asynchronous, failed authentication)
  answers every item.
* Batch Order Option: items are always served in order.
* Unique Batch Item ID is echoed; the ID Placeholder passes from one item to the next.
* An operation not in the dispatch table, or newer than the request's version, is
  Operation_Not_Supported; while sealed every operation but Discover Versions fails
  General_Failure "sealed".
* One audit record per item, ``kmip.<operation>`` (e.g. ``kmip.create``), written through
  ``Auditor.audited`` (a mutating operation records its request first).
* The per-principal rate limit (service/ratelimit.py) takes one token per batch item: a
  batch is no way around it.
* Maximum Response Size, and the server's own limit ``max_response`` (bytes of TTLV;
  default 4 MiB): once the answer built so far exceeds the smaller of the two, no further
  item is served and every item's result is replaced by Response_Too_Large.
* A message refused as a whole (unreadable, Batch Count mismatch, unsupported protocol
  version) gets one audit record, outcome error, named by its operation (``kmip.destroy``;
  ``kmip.batch`` for several, ``kmip.unknown`` when none is readable).
* A payload item of the wrong type for its tag is Invalid_Field (kmip/payload_check.py).
* The answer is filtered to the request's version (kmip/versions.py).
* Over TTLV (:meth:`Processor.respond`) each batch item is filtered and encoded once:
  its bytes give the size checked against the limits and become part of the answer.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from keykeeper.authz.model import Principal
from keykeeper.errors import KeykeeperError, ResourceExhausted, Sealed
from keykeeper.kmip.call import Call, Handler, KmipError, KmipSettings
from keykeeper.kmip.errors import failure, reason_value
from keykeeper.kmip.messages import (
    BatchRequest,
    MessageError,
    Request,
    operation_name,
    parse_request,
    response_item,
    response_message,
)
from keykeeper.kmip.payload_check import check_payload_types
from keykeeper.kmip.pkcs11_sessions import Pkcs11Sessions
from keykeeper.kmip.ttlv import Item, ItemType, TtlvError
from keykeeper.kmip.ttlv.codec import encode, encode_structure
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.undo import serve_all_or_nothing
from keykeeper.kmip.versions import (
    HIGHEST,
    answer_version,
    filter_for_version,
    is_supported,
    value_since,
)
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services

__all__ = ["Observer", "Peer", "Processor", "operation_name"]

log = logging.getLogger("keykeeper.kmip")

_FAILED = int(ResultStatus.OPERATION_FAILED)
_SUCCESS = int(ResultStatus.SUCCESS)
# Operations that change state: their audit request record is written (and waited for)
# before they act, as for mutating REST routes.
_MUTATING = frozenset((
    "create", "create_key_pair", "register", "re_key", "rekey", "re_key_key_pair",
    "rekey_key_pair", "activate", "revoke", "destroy", "add_attribute", "modify_attribute",
    "delete_attribute", "set_attribute", "adjust_attribute", "archive", "recover",
    "derive_key", "certify", "re_certify", "import", "rng_seed", "get_usage_allocation"))
_SEALED_OK = frozenset(("discover_versions",))
MAX_RESPONSE = 4 * 1024 * 1024  # bytes of TTLV: the server's own limit on one answer


Observer = Callable[[str, str, float], None]
"""Metrics.observe: (operation ``kmip.<op>``, outcome ``success`` or an error code, seconds)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """The transport's view of the caller: ``interface`` (``kmip`` or ``rest``), the
    address, and ``authenticate()`` -> the Principal (raises Unauthenticated, ...)."""

    interface: str
    source: str | None
    authenticate: Callable[[], Principal]


class Processor:
    """Serves Request Messages with the operations of ``operations`` (the dispatch table,
    Operation value -> handler; by default kmip/ops/__init__.py's). ``pkcs11``: the live
    PKCS#11 Correlation Values (kmip/pkcs11_sessions.py), one table per processor."""

    def __init__(self, services: Services, settings: KmipSettings,
                 operations: Mapping[int, Handler] | None = None,
                 observe: Observer | None = None, max_response: int = MAX_RESPONSE,
                 pkcs11: Pkcs11Sessions | None = None) -> None:
        if operations is None:
            from keykeeper.kmip.ops import OPERATIONS
            operations = OPERATIONS
        self.services, self.settings, self.operations = services, settings, operations
        self.observe = observe
        self.max_response = max_response
        self.pkcs11 = pkcs11 if pkcs11 is not None else Pkcs11Sessions()

    # -- messages --------------------------------------------------------------------------
    def invalid(self, detail: str, version: tuple[int, int] | None = None) -> Item:
        """The answer to a message that cannot be read: one failed item, Invalid_Message."""
        item = response_item(None, _FAILED, reason=reason_value("Invalid_Message"),
                             message=detail)
        v = answer_version(version) if version is not None else HIGHEST
        return filter_for_version(response_message(v, [item]), v)

    def unsupported_version(self, version: tuple[int, int]) -> Item:
        """The answer to a request in a version keykeeper does not speak, in the highest
        supported version not above it: Result Reason Unsupported_Protocol_Version where
        that version defines it (2.0 and later), else Invalid_Message."""
        answer = answer_version(version)
        reason = ResultReason.UNSUPPORTED_PROTOCOL_VERSION
        code = int(reason) if value_since(Tag.RESULT_REASON, reason) <= answer \
            else reason_value("Invalid_Message")
        item = response_item(None, _FAILED, reason=code, message=(
            f"protocol version {version[0]}.{version[1]} is not supported"))
        return filter_for_version(response_message(answer, [item]), answer)

    def audit_refusal(self, peer: Peer, message: Item | None = None) -> None:
        """One audit record, outcome error, of a message refused as a whole (unreadable,
        malformed header, unsupported version): ``kmip.<operation>`` when its batch items
        name one operation, ``kmip.batch`` for several, ``kmip.unknown`` for none; the
        principal when the caller's credentials are good."""
        audit = self.services.audit
        if not audit.enabled:
            return
        operations = _operations(message)
        names = {operation_name(op) for op in operations} or {"unknown"}
        ctx = RequestContext(interface=peer.interface, source=peer.source)
        ctx.items = ctx.failed_items = len(operations)
        with contextlib.suppress(KeykeeperError):
            ctx.principal = peer.authenticate()
        try:
            audit.record(ctx, f"kmip.{names.pop() if len(names) == 1 else 'batch'}",
                         "error", "invalid_argument")
        except KeykeeperError as exc:
            log.warning("the audit record of a refused KMIP message failed: %s", exc)

    def process(self, message: Item, peer: Peer) -> Item:
        """The Response Message answering ``message``. Never raises (a bug is logged and
        answered General_Failure)."""
        try:
            return self._process(message, peer, [])
        except Exception:
            log.exception("internal error serving a KMIP message")
            return self.internal_error()

    def respond(self, message: Item, peer: Peer) -> bytes:
        """The TTLV bytes of the Response Message answering ``message`` (as
        ``encode(process(message))``, with each batch item encoded once: the bytes that
        were measured against the response limits are the ones sent). Never raises."""
        blobs: list[bytes] = []
        try:
            answer = self._process(message, peer, blobs)
        except Exception:
            log.exception("internal error serving a KMIP message")
            return self.encode(self.internal_error())
        if blobs:   # _process leaves them only when they are exactly the answer's items
            with contextlib.suppress(TtlvError):  # else encoded below (General_Failure)
                return encode_structure(answer.tag, [encode(answer.children[0]), *blobs])
        return self.encode(answer)

    @staticmethod
    def internal_error() -> Item:
        """A General_Failure answer with no detail (a bug was logged)."""
        item = response_item(None, _FAILED, reason=reason_value("General_Failure"))
        return response_message(HIGHEST, [item])

    def encode(self, answer: Item, encoder: Callable[[Item], bytes] = encode) -> bytes:
        """``answer`` encoded; if an operation built an item that cannot be encoded (a
        bug: logged), the General_Failure answer instead."""
        try:
            return encoder(answer)
        except Exception:
            log.exception("a KMIP answer could not be encoded")
            return encoder(self.internal_error())

    def _process(self, message: Item, peer: Peer, blobs: list[bytes]) -> Item:
        """As :meth:`process`; fills ``blobs`` with the bytes of each batch item of the
        answer when every one was encoded as it is in the answer (else leaves it empty)."""
        try:
            request = parse_request(message)
        except MessageError as exc:
            self.audit_refusal(peer, message)
            return self.invalid(str(exc), exc.version)
        except TtlvError as exc:
            self.audit_refusal(peer, message)
            return self.invalid(str(exc))
        if not is_supported(request.version):
            self.audit_refusal(peer, message)
            return self.unsupported_version(request.version)
        items, too_large = self._serve(request, peer, blobs)
        if too_large is not None:
            blobs.clear()
            items = [response_item(b.operation, _FAILED,
                                   reason=reason_value("Response_Too_Large"),
                                   message=too_large, unique_id=b.unique_id)
                     for b in request.items]
        answer = response_message(request.version, items)  # its header: 1.0 fields only
        if len(blobs) == len(items) and all(blobs):
            return answer  # every item was filtered as it was encoded
        blobs.clear()
        return filter_for_version(answer, request.version)

    def _limit(self, request: Request) -> tuple[int, str]:
        """(bytes, Result Message) of the smaller of the client's and the server's limit."""
        if request.max_response_size is not None \
                and request.max_response_size <= self.max_response:
            return (request.max_response_size,
                    "the response exceeds the Maximum Response Size")
        return self.max_response, (f"the response exceeds the server's limit of "
                                    f"{self.max_response} bytes")

    def _serve(self, request: Request, peer: Peer, blobs: list[bytes],
               ) -> tuple[list[Item], str | None]:
        """The answer's batch items, and None -- or, once they exceed the response limit,
        the Result Message of Response_Too_Large (no further item is served). ``blobs``:
        as for :meth:`serve_items` (left empty by an Undo batch)."""
        refusal: KeykeeperError | None = None
        if request.asynchronous:
            refusal = KmipError("Operation_Not_Supported",
                                "asynchronous operations are not supported")
        principal: Principal | None = None
        if refusal is None:
            try:
                principal = peer.authenticate()
            except KeykeeperError as exc:
                refusal = exc
        if refusal is None and request.continuation == BatchErrorContinuationOption.UNDO:
            return serve_all_or_nothing(self, request, peer, principal)
        return self.serve_items(request, peer, principal, refusal, blobs=blobs)

    def serve_items(self, request: Request, peer: Peer, principal: Principal | None,
                    refusal: KeykeeperError | None, deadline: float | None = None,
                    blobs: list[bytes] | None = None) -> tuple[list[Item], str | None]:
        """Serve the batch items in order (every one refused with ``refusal`` if given),
        stopping at the first failure unless the option is Continue; as :meth:`_serve`.
        ``deadline`` (``time.monotonic()`` seconds): an item not started by then fails
        with ResourceExhausted. The items are filtered to the request's version; each
        one's TTLV bytes (b"" if it cannot be encoded, a bug) are appended to ``blobs``."""
        limit, too_large = self._limit(request)
        size = _header_size(request.version)
        out: list[Item] = []
        placeholder: str | None = None
        for batch in request.items:
            ctx = RequestContext(interface=peer.interface, source=peer.source)
            ctx.principal = principal
            call = Call(self.services, ctx, request.version, self.settings, placeholder,
                        self.pkcs11)
            late = None
            if refusal is None and deadline is not None and time.monotonic() > deadline:
                late = ResourceExhausted("the batch ran past its time limit")
            item, ok = self._one(batch, call, refusal or late)
            placeholder = call.placeholder
            item = filter_for_version(item, request.version)
            out.append(item)
            blob = _encoded(item)
            if blobs is not None:
                blobs.append(blob)
            size += len(blob)
            if size > limit:
                return out, too_large
            if not ok and refusal is None \
                    and request.continuation != BatchErrorContinuationOption.CONTINUE:
                break
        return out, None

    def _one(self, batch: BatchRequest, call: Call,
             refusal: KeykeeperError | None) -> tuple[Item, bool]:
        name = operation_name(batch.operation)
        started = time.perf_counter()
        try:
            with self.services.audit.audited(call.ctx, f"kmip.{name}",
                                             mutating=name in _MUTATING):
                if refusal is not None:
                    raise refusal
                self.services.limits.check_principal(call.ctx.principal)  # per item
                payload = self._run(batch, call, name)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise
            reason, message = failure(exc, f"kmip.{name}")
            if self.observe is not None:
                self.observe(f"kmip.{name}", getattr(exc, "code", "internal"),
                             time.perf_counter() - started)
            return response_item(batch.operation, _FAILED, reason=reason, message=message,
                                 unique_id=batch.unique_id), False
        if self.observe is not None:
            self.observe(f"kmip.{name}", "success", time.perf_counter() - started)
        return response_item(batch.operation, _SUCCESS, payload=payload,
                             unique_id=batch.unique_id), True

    def _run(self, batch: BatchRequest, call: Call, name: str) -> list[Item]:
        if batch.operation is None:
            raise KmipError("Invalid_Message", "the batch item names no Operation")
        handler = self.operations.get(batch.operation)
        if handler is None or value_since(Tag.OPERATION, batch.operation) > call.version:
            raise KmipError("Operation_Not_Supported",
                            f"operation {name} is not supported")
        if name not in _SEALED_OK and self.services.system.sealed():
            raise Sealed("sealed")
        check_payload_types(batch.payload)
        try:
            return handler(call, batch.payload)
        except TtlvError as exc:
            raise KmipError("Invalid_Message", str(exc)) from None


@functools.lru_cache(maxsize=16)
def _header_size(version: tuple[int, int]) -> int:
    """Bytes of an answer with no batch item in ``version`` (its header's fields have
    fixed sizes: computed once per version, not per message)."""
    return len(encode(response_message(version, [])))


def _encoded(item: Item) -> bytes:
    """The TTLV bytes of a batch item of the answer; b"" when it cannot be encoded (a bug,
    answered General_Failure by Processor.encode)."""
    try:
        return encode(item)
    except TtlvError:
        return b""


def _operations(message: Item | None) -> list[int | None]:
    """The Operation of each readable Batch Item of ``message`` (None where unreadable)."""
    if message is None or message.type is not ItemType.STRUCTURE \
            or not isinstance(message.value, list):
        return []
    out: list[int | None] = []
    for batch in message.value:
        if batch.tag != Tag.BATCH_ITEM or batch.type is not ItemType.STRUCTURE:
            continue
        op = batch.find(Tag.OPERATION)
        out.append(op.value if op is not None and op.type is ItemType.ENUMERATION
                   and isinstance(op.value, int) and not isinstance(op.value, bool) else None)
    return out
