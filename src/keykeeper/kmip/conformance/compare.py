"""Compare a server's Response Message with a test case's expected one.

Exact, item by item and in order (tag, type, value), except the tolerances below; each is
a value the server chooses, or an order the specification leaves open. docs/kmip-
conformance.md lists them with the reasons; nothing else is tolerated.

T1  Response Header Time Stamp: any Date-Time. Client and Server Correlation Value in
    the Response Header: the server's choice, present or not, any value.
T2  ``$NOW``/``$NOW±n`` (bind.py): a Date-Time within ``NOW_WINDOW`` seconds.
T3  Placeholders (``$UNIQUE_IDENTIFIER_n``, ``$IV_COUNTER_NONCE``, ...): the first answer
    binds them (bind.py); the same type is required.
T4  Result Message: free text, any value, may be absent or present.
T5  Query answers describe the server: the kinds of items (Operation, Object Type,
    Capability Information, ...) must be those of the test case's answer, their values
    and number are the server's; Vendor Identification and Server Information may hold
    anything and may be absent or present. Likewise the value of the Random Number
    Generator attribute (the server's own RNG: the reference server's ANSI X9.31 is not
    keykeeper's DRBG); the attribute itself must be there.
T6  Objects the server generated (Create, Create Key Pair, Re-Key, Re-Key Key Pair): the
    Byte String and Big Integer values under Key Value, Digest Value, and the outputs of
    Encrypt, Sign and MAC with them (Data, IV/Counter/Nonce, Authenticated Encryption
    Tag, Signature Data, MAC Data) may differ; the server's value replaces the expected
    literal in later requests (bind.py). A Decrypt with such a key of a ciphertext that
    this run did not produce (the test case's literal, made with the reference server's
    key) may answer other Data; a Decrypt of this run's own ciphertext must answer the
    expected plaintext exactly.
T7  Encrypt where the request carried no IV/Counter/Nonce: the IV the server chose, and
    so the Data and Authenticated Encryption Tag, may differ (rebound as in T6).
T8  RNG Retrieve: the Data may differ; its length must not.
T9  Order: the attributes of a Get Attributes answer, the names or references of a Get
    Attribute List answer and the Unique Identifiers of a Locate answer match in any
    order. A Get Attributes request that names no attribute asks for all of them: the
    answer may hold attributes beyond the test case's (the set is the server's choice).
T10 PKCS#11 C_GetInfo: the PKCS#11 Output Parameters are the server's CK_INFO (its
    Cryptoki version, manufacturer, description and library version); the same length
    (the CK_INFO layout) and the same flags (bytes 34-41, reserved: zero) are required.

A mismatch shows its path and both values, but never a Byte String's or Big Integer's
content (key material, plaintext): only its length.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from keykeeper.kmip.conformance.bind import NOW_WINDOW, Bindings, now_offset, placeholder
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, PKCS11Function, ResultStatus, enum_name
from keykeeper.kmip.ttlv.tags import Tag, tag_name
from keykeeper.kmip.ttlv.textual import value_tag

__all__ = ["GENERATING_OPERATIONS", "Mismatch", "compare_response", "show"]

GENERATING_OPERATIONS = frozenset({Operation.CREATE, Operation.CREATE_KEY_PAIR,
                                   Operation.RE_KEY, Operation.RE_KEY_KEY_PAIR})
_UID_TAGS = (Tag.UNIQUE_IDENTIFIER, Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER,
             Tag.PUBLIC_KEY_UNIQUE_IDENTIFIER)
_OUTPUT_TAGS = frozenset({Tag.DATA, Tag.IV_COUNTER_NONCE, Tag.AUTHENTICATED_ENCRYPTION_TAG,
                          Tag.SIGNATURE_DATA, Tag.MAC_DATA})
_OUTPUT_OPS = frozenset({Operation.ENCRYPT, Operation.SIGN, Operation.MAC})
_HEADER_EXTRAS = frozenset({Tag.CLIENT_CORRELATION_VALUE, Tag.SERVER_CORRELATION_VALUE})
_SECRET_TYPES = (ItemType.BYTE_STRING, ItemType.BIG_INTEGER)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first difference: where (``ResponseMessage/BatchItem[0]/ResultStatus``), what
    was expected and what came back (both as display text, secrets reduced to lengths)."""

    path: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.actual}"


@dataclass(frozen=True, slots=True)
class _Ctx:
    op: int | None = None
    generated: bool = False
    server_iv: bool = False
    all_attributes: bool = False
    foreign_input: bool = False
    pkcs11_info: bool = False
    attribute: str | None = None  # the 1.x Attribute Name of the Attribute being compared


def show(item: Item | None, attribute: str | None = None) -> str:
    """Display text of one item's value: enumerations by name (a 1.x Attribute Value's by
    the name of its ``attribute``), Byte Strings and Big Integers by length only,
    Structures by their children's tags."""
    if item is None:
        return "nothing"
    if item.type in _SECRET_TYPES:
        if isinstance(item.value, str):
            return item.value
        size = len(item.value) if isinstance(item.value, bytes) else item.width or "?"
        return f"<{item.type.name} of {size} bytes>"
    if item.type is ItemType.STRUCTURE and isinstance(item.value, list):
        return "{" + ", ".join(_name(c.tag) for c in item.value) + "}"
    if item.type is ItemType.ENUMERATION and isinstance(item.value, int):
        return enum_name(value_tag(item.tag, attribute), item.value) or hex(item.value)
    return repr(item.value)


def _name(tag: int) -> str:
    return tag_name(tag) or f"{tag:#08x}"


def compare_response(expected: Item, actual: Item, request: Item, bindings: Bindings,
                     now: int) -> Mismatch | None:
    """Compare Response Message ``actual`` with the test case's ``expected`` one, for the
    (bound) Request Message ``request`` sent at ``now`` (Unix seconds). Binds
    placeholders into ``bindings`` as it goes. Returns the first mismatch, or None."""
    root = _name(expected.tag)
    if expected.tag != actual.tag or actual.type is not ItemType.STRUCTURE:
        return Mismatch(root, root, _name(actual.tag))
    exp_items, act_items = expected.children, actual.children
    req_items = request.find_all(Tag.BATCH_ITEM) if request.type is ItemType.STRUCTURE else []
    exp_batch = [x for x in exp_items if x.tag == Tag.BATCH_ITEM]
    act_batch = [x for x in act_items if x.tag == Tag.BATCH_ITEM]
    # Batch items first: their Result Status says more than the header's Batch Count.
    for i in range(max(len(exp_batch), len(act_batch))):
        path = f"{root}/BatchItem[{i}]"
        if i >= len(exp_batch) or i >= len(act_batch):
            return Mismatch(path, "a BatchItem" if i < len(exp_batch) else "nothing",
                            "a BatchItem" if i < len(act_batch) else "nothing")
        req = req_items[i] if i < len(req_items) else None
        mm = _compare_batch_item(exp_batch[i], act_batch[i], req, path, bindings, now)
        if mm is not None:
            return _why_undone(mm, act_batch)
    exp_rest = [x for x in exp_items if x.tag != Tag.BATCH_ITEM]
    act_rest = [x for x in act_items if x.tag != Tag.BATCH_ITEM]
    for i in range(max(len(exp_rest), len(act_rest))):
        e = exp_rest[i] if i < len(exp_rest) else None
        a = act_rest[i] if i < len(act_rest) else None
        if e is None or a is None or e.tag != a.tag:
            where = e if e is not None else a
            return Mismatch(f"{root}/{_name(where.tag) if where else '?'}", _label(e),
                            _label(a))
        path = f"{root}/{_name(e.tag)}"
        if e.tag == Tag.RESPONSE_HEADER:
            mm = _compare_header(e, a, path, bindings, now)
        else:
            mm = _cmp(e, a, path, (), _Ctx(), bindings, now)
        if mm is not None:
            return mm
    return None


_UNDONE = enum_name(Tag.RESULT_STATUS, ResultStatus.OPERATION_UNDONE) or "OperationUndone"


def _why_undone(mm: Mismatch, act_batch: list[Item]) -> Mismatch:
    """An item answered Operation Undone was undone by a later item's failure: name that
    item and its reason, the cause a reader needs."""
    if not mm.actual.startswith(_UNDONE):
        return mm
    for n, item in enumerate(act_batch):
        status = item.find(Tag.RESULT_STATUS)
        if status is not None and status.value == ResultStatus.OPERATION_FAILED:
            reason, msg = item.find(Tag.RESULT_REASON), item.find(Tag.RESULT_MESSAGE)
            text = msg.value if msg is not None and isinstance(msg.value, str) else ""
            return Mismatch(mm.path, mm.expected, f"{mm.actual}; the batch was undone: "
                            f"BatchItem[{n}] failed ({show(reason)}: {text})")
    return mm


def _compare_header(e: Item, a: Item, path: str, b: Bindings, now: int) -> Mismatch | None:
    ek = [c for c in e.children if c.tag not in _HEADER_EXTRAS]
    ak = [c for c in a.children if c.tag not in _HEADER_EXTRAS]
    return _cmp(Item(e.tag, e.type, ek), Item(a.tag, a.type, ak), path, (), _Ctx(), b, now)


def _compare_batch_item(e: Item, a: Item, req: Item | None, path: str, b: Bindings,
                        now: int) -> Mismatch | None:
    op_item = e.find(Tag.OPERATION)
    op = op_item.value if op_item is not None and isinstance(op_item.value, int) else None
    status = e.find(Tag.RESULT_STATUS)
    act_status = a.find(Tag.RESULT_STATUS)
    if status is not None and (act_status is None or act_status.value != status.value):
        why = show(a.find(Tag.RESULT_REASON))
        msg = a.find(Tag.RESULT_MESSAGE)
        text = msg.value if msg is not None and isinstance(msg.value, str) else ""
        detail = f"{show(act_status)} ({why}: {text})"
        return Mismatch(f"{path}/ResultStatus", show(status), detail)
    payload = a.find(Tag.RESPONSE_PAYLOAD)
    req_payload = req.find(Tag.REQUEST_PAYLOAD) if req is not None else None
    if payload is not None and op in GENERATING_OPERATIONS:
        for tag in _UID_TAGS:
            for found in payload.find_all(tag):
                if isinstance(found.value, str):
                    b.generated.add(found.value)
    uid = payload.find(Tag.UNIQUE_IDENTIFIER) if payload is not None else None
    ctx = _Ctx(
        op=op,
        generated=uid is not None and isinstance(uid.value, str) and uid.value in b.generated,
        server_iv=op == Operation.ENCRYPT and req_payload is not None
        and req_payload.find(Tag.IV_COUNTER_NONCE) is None,
        all_attributes=op == Operation.GET_ATTRIBUTES and req_payload is not None
        and req_payload.find(Tag.ATTRIBUTE_NAME) is None
        and req_payload.find(Tag.ATTRIBUTE_REFERENCE) is None,
        foreign_input=op == Operation.DECRYPT and _foreign(req_payload, b),
        pkcs11_info=op == Operation.PKCS_11 and req_payload is not None
        and _value(req_payload, Tag.PKCS_11_FUNCTION) == PKCS11Function.C_GETINFO,
    )
    if op == Operation.QUERY and status is not None and payload is not None:
        exp_payload = e.find(Tag.RESPONSE_PAYLOAD)
        if exp_payload is not None:
            return _compare_query(exp_payload, payload, f"{path}/ResponsePayload")
    # T4: Result Message is free text, present or not.
    ek = [c for c in e.children if c.tag != Tag.RESULT_MESSAGE]
    ak = [c for c in a.children if c.tag != Tag.RESULT_MESSAGE]
    mm = _cmp(Item(e.tag, e.type, ek), Item(a.tag, a.type, ak), path, (), ctx, b, now)
    if mm is None and payload is not None:
        _learn_outputs(op, payload, b)
    return mm


_OUTPUT_NAMES: dict[int, str] = {
    Tag.IV_COUNTER_NONCE: "$IV_COUNTER_NONCE",
    Tag.AUTHENTICATED_ENCRYPTION_TAG: "$AUTHENTICATED_ENCRYPTION_TAG",
    Tag.SIGNATURE_DATA: "$SIGNATURE_DATA", Tag.MAC_DATA: "$MAC_DATA",
    Tag.CORRELATION_VALUE: "$CORRELATION_VALUE"}


def _learn_outputs(op: int | None, payload: Item, b: Bindings) -> None:
    """bind.py: outputs a later request may name although the expected answer wrote them
    as literals."""
    for item in payload.children:
        if item.tag in _OUTPUT_NAMES and isinstance(item.value, bytes):
            b.learn_output(_OUTPUT_NAMES[item.tag], item.value)
    if op == Operation.ENCRYPT:
        data = payload.find(Tag.DATA)
        if data is not None and isinstance(data.value, bytes):
            b.learn_output(f"$DATA_{b.encrypts}", data.value)
            b.encrypts += 1


def _foreign(req_payload: Item | None, b: Bindings) -> bool:
    """Whether a Decrypt request's Data is the test case's literal ciphertext (made by the
    reference server's key), not one this run's server produced (T6)."""
    data = req_payload.find(Tag.DATA) if req_payload is not None else None
    return (data is not None and data.value not in b.literals.values()
            and data.value not in b.values.values())


def _value(payload: Item, tag: int) -> object:
    item = payload.find(tag)
    return None if item is None else item.value


def _compare_query(e: Item, a: Item, path: str) -> Mismatch | None:
    free = {Tag.VENDOR_IDENTIFICATION, Tag.SERVER_INFORMATION}
    kinds = {c.tag for c in e.children} - free
    got = {c.tag for c in a.children} - free
    if kinds != got:
        return Mismatch(path, ", ".join(sorted(_name(t) for t in kinds)) or "nothing",
                        ", ".join(sorted(_name(t) for t in got)) or "nothing")
    return None


def _cmp(e: Item, a: Item, path: str, anc: tuple[int, ...], ctx: _Ctx, b: Bindings,
         now: int) -> Mismatch | None:
    if e.tag != a.tag:
        return Mismatch(path, _name(e.tag), _name(a.tag))
    if e.tag == Tag.TIME_STAMP and anc[-1:] == (Tag.RESPONSE_HEADER,) \
            and a.type is ItemType.DATE_TIME:
        return None  # T1
    name = placeholder(e)
    if name is not None:
        return _cmp_placeholder(name, e, a, path, b, now)
    if e.type is not a.type:
        return Mismatch(path, f"type {e.type.name}", f"type {a.type.name}")
    if e.tag == Tag.RANDOM_NUMBER_GENERATOR or (
            e.tag == Tag.ATTRIBUTE_VALUE and ctx.attribute == "Random Number Generator"):
        return None  # T5: the server's own RNG
    if e.type is ItemType.STRUCTURE:
        return _cmp_structure(e, a, path, (*anc, e.tag), ctx, b, now)
    if e.value == a.value:
        return None
    if _tolerated(e, a, anc, ctx):
        if isinstance(e.value, bytes) and isinstance(a.value, bytes):
            b.literals[e.value] = a.value
        return None
    return Mismatch(path, show(e, ctx.attribute), show(a, ctx.attribute))


def _cmp_placeholder(name: str, e: Item, a: Item, path: str, b: Bindings,
                     now: int) -> Mismatch | None:
    offset = now_offset(name)
    if offset is not None:
        if a.type not in (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED) \
                or not isinstance(a.value, int):
            return Mismatch(path, f"a Date-Time ({name})", show(a))
        seconds = a.value // 1_000_000 if a.type is ItemType.DATE_TIME_EXTENDED else a.value
        if abs(seconds - (now + offset)) > NOW_WINDOW:
            return Mismatch(path, f"{name} (within {NOW_WINDOW} s)",
                            f"{seconds - now:+d} s from now")
        return None
    if e.type is not a.type or isinstance(a.value, list):
        return Mismatch(path, f"{name} of type {e.type.name}", f"type {a.type.name}")
    if not b.learn(name, a.value):
        return Mismatch(path, f"{name} = {show(Item(a.tag, a.type, b.values[name]))}",
                        show(a))
    return None


def _tolerated(e: Item, a: Item, anc: tuple[int, ...], ctx: _Ctx) -> bool:
    tag = e.tag
    if tag == Tag.VENDOR_IDENTIFICATION and ctx.op == Operation.QUERY:
        return True  # T5
    if Tag.SERVER_INFORMATION in anc:
        return True  # T5
    secret = e.type in _SECRET_TYPES
    if ctx.generated and secret and (Tag.KEY_VALUE in anc or tag == Tag.DIGEST_VALUE):
        return True  # T6
    if ctx.generated and tag in _OUTPUT_TAGS and ctx.op in _OUTPUT_OPS:
        return True  # T6
    if ctx.generated and ctx.foreign_input and tag == Tag.DATA:
        return True  # T6: the reference key's ciphertext decrypted with our key
    if ctx.server_iv and tag in _OUTPUT_TAGS:
        return True  # T7
    if ctx.pkcs11_info and tag == Tag.PKCS_11_OUTPUT_PARAMETERS:
        return (isinstance(e.value, bytes) and isinstance(a.value, bytes)
                and len(e.value) == len(a.value) and e.value[34:42] == a.value[34:42])  # T10
    return (ctx.op == Operation.RNG_RETRIEVE and tag == Tag.DATA
            and isinstance(e.value, bytes) and isinstance(a.value, bytes)
            and len(e.value) == len(a.value))  # T8


def _unordered(e: Item, anc: tuple[int, ...], ctx: _Ctx) -> tuple[bool, bool]:
    """(match children in any order, actual may hold extra children) for structure ``e``
    (T9)."""
    if e.tag == Tag.RESPONSE_PAYLOAD and ctx.op in (
            Operation.GET_ATTRIBUTES, Operation.GET_ATTRIBUTE_LIST, Operation.LOCATE):
        return True, ctx.all_attributes
    if e.tag == Tag.ATTRIBUTES and anc[-1:] == (Tag.RESPONSE_PAYLOAD,) \
            and ctx.op == Operation.GET_ATTRIBUTES:
        return True, ctx.all_attributes
    return False, False


def _cmp_structure(e: Item, a: Item, path: str, anc: tuple[int, ...], ctx: _Ctx,
                   b: Bindings, now: int) -> Mismatch | None:
    ek, ak = e.children, a.children
    if e.tag == Tag.ATTRIBUTE:
        name = e.find(Tag.ATTRIBUTE_NAME)
        ctx = replace(ctx, attribute=name.value if name is not None
                      and isinstance(name.value, str) else None)
    any_order, extras = _unordered(e, anc[:-1], ctx)
    if any_order:
        return _cmp_any_order(ek, ak, path, anc, ctx, b, now, extras)
    counts: dict[int, int] = {}
    for i in range(max(len(ek), len(ak))):
        ec = ek[i] if i < len(ek) else None
        ac = ak[i] if i < len(ak) else None
        ref = ec if ec is not None else ac
        assert ref is not None
        n = counts[ref.tag] = counts.get(ref.tag, -1) + 1
        child_path = f"{path}/{_name(ref.tag)}" + (f"[{n}]" if n else "")
        if ec is None or ac is None:
            return Mismatch(child_path, _label(ec), _label(ac))
        mm = _cmp(ec, ac, child_path, anc, ctx, b, now)
        if mm is not None:
            return mm
    return None


def _label(item: Item | None) -> str:
    if item is None:
        return "nothing"
    if item.tag == Tag.ATTRIBUTE and item.type is ItemType.STRUCTURE:
        name = item.find(Tag.ATTRIBUTE_NAME)
        value = item.find(Tag.ATTRIBUTE_VALUE)
        if name is not None:
            return f"Attribute {name.value!r} = {show(value)}"
    return f"{_name(item.tag)} = {show(item)}"


def _cmp_any_order(ek: list[Item], ak: list[Item], path: str, anc: tuple[int, ...],
                   ctx: _Ctx, b: Bindings, now: int, extras: bool) -> Mismatch | None:
    unused = list(range(len(ak)))
    for ec in ek:
        first: Mismatch | None = None
        for j in unused:
            trial = b.copy()
            mm = _cmp(ec, ak[j], f"{path}/{_name(ec.tag)}", anc, ctx, trial, now)
            if mm is None:
                b.adopt(trial)
                unused.remove(j)
                break
            if first is None and ak[j].tag == ec.tag and _same_attribute(ec, ak[j]):
                first = mm
        else:
            return first or Mismatch(f"{path}/{_name(ec.tag)}", _label(ec),
                                     "no matching item")
    if unused and not extras:
        return Mismatch(f"{path}/{_name(ak[unused[0]].tag)}", "nothing",
                        _label(ak[unused[0]]))
    return None


def _same_attribute(e: Item, a: Item) -> bool:
    """Whether actual ``a`` is the candidate to blame when nothing matches expected ``e``:
    a 1.x Attribute of the same name, or a structure of the same tag (a 2.x attribute);
    a primitive item (a Unique Identifier, an Attribute Reference) has none."""
    if e.type is not ItemType.STRUCTURE or a.type is not ItemType.STRUCTURE:
        return False
    if e.tag != Tag.ATTRIBUTE:
        return True
    en, an = e.find(Tag.ATTRIBUTE_NAME), a.find(Tag.ATTRIBUTE_NAME)
    return en is not None and an is not None and en.value == an.value
