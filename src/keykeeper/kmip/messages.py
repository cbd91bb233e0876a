"""Request and Response Messages (KMIP 1.4 §7, KMIP 2.1 §8): parse a Request Message
tree into :class:`Request`, build Response Messages, and -- for clients and tests --
build requests and read responses.

A Request Message is ``Request Header`` + one or more ``Batch Item`` s; the header
carries the Protocol Version, the Batch Count (which must equal the number of batch
items) and the optional Maximum Response Size, Asynchronous Indicator, Batch Error
Continuation Option and Batch Order Option (KMIP 2.1 §8.2 "Request Header").
Malformed messages raise :class:`~keykeeper.kmip.ttlv.TtlvError` (answered with Result
Reason ``Invalid_Message``); ``version`` is kept on the error when it was readable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from keykeeper.kmip.ttlv import Item, ItemType, TtlvError
from keykeeper.kmip.ttlv.enums import BatchErrorContinuationOption, Operation, ResultStatus
from keykeeper.kmip.ttlv.tags import Tag

__all__ = [
    "BatchRequest",
    "BatchResult",
    "MessageError",
    "Request",
    "Response",
    "batch_item",
    "operation_name",
    "parse_request",
    "parse_response",
    "request_message",
    "response_item",
    "response_message",
]

Version = tuple[int, int]


class MessageError(TtlvError):
    """A Request Message that cannot be served; ``version`` is the request's Protocol
    Version when it could be read (the answer then uses it), else None."""

    def __init__(self, detail: str, version: Version | None = None) -> None:
        super().__init__(detail)
        self.version = version


@dataclass(slots=True)
class BatchRequest:
    operation: int | None            # None: the batch item names no Operation
    payload: Item                    # the Request Payload (an empty Structure if absent)
    unique_id: bytes | None = None   # Unique Batch Item ID, echoed in the answer


@dataclass(slots=True)
class Request:
    version: Version
    items: list[BatchRequest]
    max_response_size: int | None = None
    asynchronous: bool = False
    continuation: int = int(BatchErrorContinuationOption.STOP)
    batch_order: bool = True


def _int(item: Item | None, what: str, kind: ItemType = ItemType.INTEGER) -> int | None:
    if item is None:
        return None
    if item.type is not kind or not isinstance(item.value, int) or isinstance(item.value, bool):
        raise TtlvError(f"{what} has the wrong type")
    return item.value


def _bool(item: Item | None, what: str) -> bool | None:
    if item is None:
        return None
    if item.type is not ItemType.BOOLEAN or not isinstance(item.value, bool):
        raise TtlvError(f"{what} has the wrong type")
    return item.value


_CONTINUATIONS = frozenset(int(v) for v in BatchErrorContinuationOption)


def _version(header: Item) -> Version:
    pv = header.find(Tag.PROTOCOL_VERSION)
    if pv is None or pv.type is not ItemType.STRUCTURE:
        raise TtlvError("the Request Header has no Protocol Version")
    major = _int(pv.find(Tag.PROTOCOL_VERSION_MAJOR), "Protocol Version Major")
    minor = _int(pv.find(Tag.PROTOCOL_VERSION_MINOR), "Protocol Version Minor")
    if major is None or minor is None:
        raise TtlvError("the Protocol Version lacks its major or minor number")
    return (major, minor)


def parse_request(message: Item) -> Request:
    """The Request Message ``message`` as a :class:`Request`. Raises MessageError
    (Invalid_Message) for another root tag, a missing header, Protocol Version or Batch
    Count, a Batch Count that differs from the batch items given, no batch item, a
    header field of the wrong type (Asynchronous Indicator and Batch Order Option are
    Booleans, Maximum Response Size an Integer, Batch Error Continuation Option an
    Enumeration of a defined value)."""
    if message.tag != Tag.REQUEST_MESSAGE or message.type is not ItemType.STRUCTURE:
        raise MessageError("not a Request Message")
    header = message.find(Tag.REQUEST_HEADER)
    if header is None or header.type is not ItemType.STRUCTURE:
        raise MessageError("the Request Message has no Request Header")
    version = _version(header)
    try:
        count = _int(header.find(Tag.BATCH_COUNT), "Batch Count")
        batch = message.find_all(Tag.BATCH_ITEM)
        if count is None:
            raise TtlvError("the Request Header has no Batch Count")
        if count != len(batch) or not batch:
            raise TtlvError(f"Batch Count {count} but {len(batch)} batch item(s)")
        asynchronous = _bool(header.find(Tag.ASYNCHRONOUS_INDICATOR), "Asynchronous Indicator")
        order = _bool(header.find(Tag.BATCH_ORDER_OPTION), "Batch Order Option")
        request = Request(
            version=version, items=[_batch_item(b) for b in batch],
            max_response_size=_int(header.find(Tag.MAXIMUM_RESPONSE_SIZE),
                                   "Maximum Response Size"),
            asynchronous=asynchronous is True, batch_order=order is not False)
        continuation = _int(header.find(Tag.BATCH_ERROR_CONTINUATION_OPTION),
                            "Batch Error Continuation Option", ItemType.ENUMERATION)
        if continuation is not None:
            if continuation not in _CONTINUATIONS:
                raise TtlvError(f"Batch Error Continuation Option {continuation} is not "
                                "defined")
            request.continuation = continuation
    except TtlvError as exc:
        raise MessageError(str(exc), version) from None
    return request


def _batch_item(item: Item) -> BatchRequest:
    if item.type is not ItemType.STRUCTURE:
        raise TtlvError("a Batch Item must be a Structure")
    op = item.find(Tag.OPERATION)
    operation = _int(op, "Operation", ItemType.ENUMERATION)
    uid = item.find(Tag.UNIQUE_BATCH_ITEM_ID)
    if uid is not None and not isinstance(uid.value, bytes):
        raise TtlvError("Unique Batch Item ID must be a Byte String")
    payload = item.find(Tag.REQUEST_PAYLOAD)
    if payload is None:
        payload = Item.structure(Tag.REQUEST_PAYLOAD)
    elif payload.type is not ItemType.STRUCTURE:
        raise TtlvError("the Request Payload must be a Structure")
    return BatchRequest(operation, payload,
                        uid.value if uid is not None and isinstance(uid.value, bytes) else None)


# -- responses ---------------------------------------------------------------------------
def _protocol_version(version: Version) -> Item:
    return Item.structure(Tag.PROTOCOL_VERSION, [
        Item(Tag.PROTOCOL_VERSION_MAJOR, ItemType.INTEGER, version[0]),
        Item(Tag.PROTOCOL_VERSION_MINOR, ItemType.INTEGER, version[1])])


def response_item(operation: int | None, status: int, *, reason: int | None = None,
                  message: str | None = None, payload: list[Item] | None = None,
                  unique_id: bytes | None = None) -> Item:
    """One response Batch Item (KMIP 2.1 §8.3): Operation (when known), Unique Batch Item
    ID (echoed), Result Status, Result Reason and Message (failures), Response Payload
    (successes; ``payload`` are its children)."""
    children: list[Item] = []
    if operation is not None:
        children.append(Item(Tag.OPERATION, ItemType.ENUMERATION, operation))
    if unique_id is not None:
        children.append(Item(Tag.UNIQUE_BATCH_ITEM_ID, ItemType.BYTE_STRING, unique_id))
    children.append(Item(Tag.RESULT_STATUS, ItemType.ENUMERATION, status))
    if reason is not None:
        children.append(Item(Tag.RESULT_REASON, ItemType.ENUMERATION, reason))
    if message is not None:
        children.append(Item(Tag.RESULT_MESSAGE, ItemType.TEXT_STRING, message))
    if payload is not None:
        children.append(Item.structure(Tag.RESPONSE_PAYLOAD, payload))
    return Item.structure(Tag.BATCH_ITEM, children)


def response_message(version: Version, items: list[Item], *,
                     now: float | None = None) -> Item:
    """A Response Message: header (Protocol Version, Time Stamp, Batch Count) + items."""
    header = Item.structure(Tag.RESPONSE_HEADER, [
        _protocol_version(version),
        Item(Tag.TIME_STAMP, ItemType.DATE_TIME, int(time.time() if now is None else now)),
        Item(Tag.BATCH_COUNT, ItemType.INTEGER, len(items))])
    return Item.structure(Tag.RESPONSE_MESSAGE, [header, *items])


# -- the client side (tests, tools) ------------------------------------------------------
def batch_item(operation: int, payload: list[Item] | None = None, *,
               unique_id: bytes | None = None) -> Item:
    """A request Batch Item: Operation, optional Unique Batch Item ID, Request Payload."""
    children = [Item(Tag.OPERATION, ItemType.ENUMERATION, int(operation))]
    if unique_id is not None:
        children.append(Item(Tag.UNIQUE_BATCH_ITEM_ID, ItemType.BYTE_STRING, unique_id))
    children.append(Item.structure(Tag.REQUEST_PAYLOAD, payload or []))
    return Item.structure(Tag.BATCH_ITEM, children)


def request_message(items: list[Item], *, version: Version = (2, 1),
                    continuation: int | None = None, batch_order: bool | None = None,
                    max_response_size: int | None = None,
                    asynchronous: bool | None = None) -> Item:
    """A Request Message of the batch items ``items`` (see :func:`batch_item`)."""
    header = [_protocol_version(version)]
    if max_response_size is not None:
        header.append(Item(Tag.MAXIMUM_RESPONSE_SIZE, ItemType.INTEGER, max_response_size))
    if asynchronous is not None:
        header.append(Item(Tag.ASYNCHRONOUS_INDICATOR, ItemType.BOOLEAN, asynchronous))
    if continuation is not None:
        header.append(Item(Tag.BATCH_ERROR_CONTINUATION_OPTION, ItemType.ENUMERATION,
                           int(continuation)))
    if batch_order is not None:
        header.append(Item(Tag.BATCH_ORDER_OPTION, ItemType.BOOLEAN, batch_order))
    header.append(Item(Tag.BATCH_COUNT, ItemType.INTEGER, len(items)))
    return Item.structure(Tag.REQUEST_MESSAGE,
                          [Item.structure(Tag.REQUEST_HEADER, header), *items])


@dataclass(slots=True)
class BatchResult:
    operation: int | None
    status: int
    reason: int | None = None
    message: str | None = None
    payload: Item | None = None
    unique_id: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.status == ResultStatus.SUCCESS


@dataclass(slots=True)
class Response:
    version: Version
    items: list[BatchResult] = field(default_factory=list)
    time_stamp: int | None = None


def parse_response(message: Item) -> Response:
    """A Response Message read back (for clients and tests). Raises TtlvError when it is
    not one."""
    if message.tag != Tag.RESPONSE_MESSAGE:
        raise TtlvError("not a Response Message")
    header = message.find(Tag.RESPONSE_HEADER)
    if header is None:
        raise TtlvError("the Response Message has no Response Header")
    stamp = header.find(Tag.TIME_STAMP)
    out = Response(_version(header), time_stamp=int(stamp.value)
                   if stamp is not None and isinstance(stamp.value, int) else None)
    for b in message.find_all(Tag.BATCH_ITEM):
        op, status = b.find(Tag.OPERATION), b.find(Tag.RESULT_STATUS)
        reason, text = b.find(Tag.RESULT_REASON), b.find(Tag.RESULT_MESSAGE)
        uid = b.find(Tag.UNIQUE_BATCH_ITEM_ID)
        out.items.append(BatchResult(
            operation=_int(op, "Operation", ItemType.ENUMERATION),
            status=_int(status, "Result Status", ItemType.ENUMERATION) or 0,
            reason=_int(reason, "Result Reason", ItemType.ENUMERATION),
            message=str(text.value) if text is not None else None,
            payload=b.find(Tag.RESPONSE_PAYLOAD),
            unique_id=uid.value if uid is not None and isinstance(uid.value, bytes) else None))
    return out


def operation_name(operation: int | None) -> str:
    """``create_key_pair`` for Operation.CREATE_KEY_PAIR; ``unknown`` for no or an unknown
    value."""
    try:
        return Operation(operation).name.lower() if operation is not None else "unknown"
    except ValueError:
        return "unknown"
