"""The Batch Error Continuation Option Undo (KMIP 2.1 §8.2; 1.4 §6.7): "if any operation
in the request message fails, then the server SHALL undo all the previous operations".

keykeeper serves such a batch inside one transaction of the key store
(``Deps.all_or_nothing``: every operation's transaction is a savepoint of it, and every
read sees the batch's earlier changes). At the first failure the batch stops and the
transaction rolls back; the items served before the failure answer Operation_Undone,
keeping only the identifiers of their payload (no key material, ciphertext, signature or
MAC of an undone item leaves the server: its usage count is rolled back with it), and the
failed item keeps its failure. Effects outside the store are undone by hooks (an HSM
object made for a rolled-back key is destroyed; in-memory usage reservations and cached
key metadata and handles are dropped) or refused inside the batch when they cannot be
(destroying an HSM-protected key: Feature_Not_Supported). The audit trail keeps every
item's records, and one more per item rolled back, ``kmip.undo``.

While the batch runs, SQLite's single writer is held: other writers wait for it. So an
Undo batch holds at most ``MAX_ITEMS`` items (more: refused as a whole,
Feature_Not_Supported) and an item not started ``MAX_SECONDS`` after the batch began fails
(General_Failure), which undoes the batch. With a required ``database`` audit sink on
SQLite (it writes through that writer) Undo is refused as a whole with
Feature_Not_Supported.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from keykeeper.authz.model import Principal
from keykeeper.errors import KeykeeperError
from keykeeper.kmip.call import KmipError
from keykeeper.kmip.errors import failure
from keykeeper.kmip.messages import Request, operation_name, response_item
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import ResultStatus
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import RequestContext

if TYPE_CHECKING:
    from keykeeper.kmip.processor import Peer, Processor

__all__ = ["MAX_ITEMS", "MAX_SECONDS", "serve_all_or_nothing", "undone"]

MAX_ITEMS = 64      # batch items in one Undo batch
MAX_SECONDS = 2.0   # seconds after which no further item of an Undo batch starts

_SUCCESS = int(ResultStatus.SUCCESS)
_FAILED = int(ResultStatus.OPERATION_FAILED)
_UNDONE = int(ResultStatus.OPERATION_UNDONE)
# What an undone item's payload keeps: the identifiers it named (as in the OASIS test
# cases, e.g. BL-M-2-21), nothing produced by the operation.
_KEPT = frozenset((Tag.UNIQUE_IDENTIFIER, Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER,
                   Tag.PUBLIC_KEY_UNIQUE_IDENTIFIER, Tag.OBJECT_TYPE))


def serve_all_or_nothing(processor: Processor, request: Request, peer: Peer,
                         principal: Principal | None) -> tuple[list[Item], str | None]:
    """Serve ``request`` (option Undo) all or nothing; as ``Processor._serve``."""
    services = processor.services
    deps = services.deps
    if deps.engine.dialect.name == "sqlite" and services.audit.requires_store():
        refusal = KmipError("Feature_Not_Supported",
                            "Batch Error Continuation Option Undo is not available with a "
                            "required database audit sink on SQLite")
        return processor.serve_items(request, peer, principal, refusal)
    if len(request.items) > MAX_ITEMS:
        refusal = KmipError("Feature_Not_Supported", f"a batch with the Batch Error "
                            f"Continuation Option Undo holds at most {MAX_ITEMS} items")
        return processor.serve_items(request, peer, principal, refusal)
    out: list[Item] = []
    too_large: str | None = None
    try:
        with deps.all_or_nothing() as batch:
            out, too_large = processor.serve_items(request, peer, principal, None,
                                                   time.monotonic() + MAX_SECONDS)
            if too_large is not None or any(_status(item) != _SUCCESS for item in out):
                batch.undo()
    except KeykeeperError as exc:  # the store could not begin or commit: nothing changed
        reason, message = failure(exc, "kmip.batch")
        return [response_item(b.operation, _FAILED, reason=reason, message=message,
                              unique_id=b.unique_id) for b in request.items], None
    if not batch.undone:
        return out, None
    answer = [undone(item) if _status(item) == _SUCCESS else item for item in out]
    _audit(processor, peer, principal, out)
    return answer, too_large


def undone(item: Item) -> Item:
    """A successful response Batch Item as Operation_Undone: Result Status replaced, the
    Response Payload reduced to its identifiers."""
    children: list[Item] = []
    for child in item.children:
        if child.tag == Tag.RESULT_STATUS:
            children.append(Item(child.tag, child.type, _UNDONE))
        elif child.tag == Tag.RESPONSE_PAYLOAD:
            children.append(Item.structure(Tag.RESPONSE_PAYLOAD, [
                c for c in child.children if c.tag in _KEPT]))
        else:
            children.append(child)
    return Item.structure(Tag.BATCH_ITEM, children)


def _status(item: Item) -> int | None:
    found = item.find(Tag.RESULT_STATUS)
    return found.value if found is not None and isinstance(found.value, int) else None


def _audit(processor: Processor, peer: Peer, principal: Principal | None,
           out: list[Item]) -> None:
    """One ``kmip.undo`` record per item rolled back (not waited for), naming its
    operation, and its key when the item named an object (an audit search by key finds
    it)."""
    served = [item for item in out if _status(item) == _SUCCESS]
    for n, item in enumerate(served, 1):
        op = item.find(Tag.OPERATION)
        ctx = RequestContext(interface=peer.interface, source=peer.source)
        ctx.principal = principal
        payload = item.find(Tag.RESPONSE_PAYLOAD)
        uid = payload.find(Tag.UNIQUE_IDENTIFIER) if payload is not None else None
        if uid is not None and isinstance(uid.value, str):
            ctx.key_id = uid.value.split("/")[0]
        processor.services.audit.note(
            "kmip.undo", ctx=ctx, detail=f"undone: {_name(op)} "
            f"(item {n} of {len(served)} rolled back; the batch failed at item "
            f"{len(served) + 1})")


def _name(op: Item | None) -> str:
    value = op.value if op is not None else None
    return operation_name(value if isinstance(value, int) else None)
