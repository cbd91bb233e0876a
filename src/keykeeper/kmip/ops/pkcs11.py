"""PKCS#11 (KMIP 2.0 and later; KMIP 2.1 §6.1.37): a PKCS#11 function called through
KMIP. keykeeper serves the functions that describe it as a PKCS#11 library with one slot
and one token -- the general-purpose and the slot and token functions -- and answers
every other function CKR_FUNCTION_NOT_SUPPORTED: objects, keys and cryptography are
served by KMIP's own operations, which apply keykeeper's policy (purpose, state,
algorithm policy, grants) and audit each use; a second, PKCS#11-shaped path to them would
be a second place to get those rules right.

Served (parameters encoded as kmip/pkcs11_info.py says; a malformed one is
CKR_ARGUMENTS_BAD):

====================  ==========================  ===========================
function              PKCS#11 Input Parameters    PKCS#11 Output Parameters
====================  ==========================  ===========================
C_Initialize          absent, or <= 64 bytes,     -- (a new Correlation Value)
                      not interpreted (*)
C_Finalize            absent, or one 0x00 byte    --
                      (pReserved NULL_PTR)
C_GetInfo             absent                      CK_INFO
C_GetSlotList         tokenPresent (CK_BBOOL)     count, slot IDs
C_GetSlotInfo         slotID (CK_ULONG)           CK_SLOT_INFO
C_GetTokenInfo        slotID                      CK_TOKEN_INFO
C_GetMechanismList    slotID                      count, mechanism types
C_GetMechanismInfo    slotID, type (CK_ULONGs)    CK_MECHANISM_INFO
====================  ==========================  ===========================

(*) CK_C_INITIALIZE_ARGS (mutex callbacks, thread flags) govern a library inside the
client's process and mean nothing to a server; the test case PKCS11-M-1-21 sends one
byte ``01``.

Sessions (PKCS#11 3.0 §5.4): C_Initialize without a live Correlation Value answers a new
one (kmip/pkcs11_sessions.py: random, bound to the caller, bounded in number); a
C_Initialize that carries a live one answers CKR_CRYPTOKI_ALREADY_INITIALIZED ("If
C_Initialize is called when the library is already initialized"). Every other served
function needs a live Correlation Value of the same caller, else it answers
CKR_CRYPTOKI_NOT_INITIALIZED (checked before the input parameters); C_Finalize closes it.
Only C_Initialize returns the Correlation Value, as the test case's answers do. In a
batch with the Batch Error Continuation Option Undo that is rolled back (KMIP 2.1 §8.2),
a C_Initialize's value is closed again (its Operation_Undone answer does not carry it)
and a C_Finalize's value is live again.
An unknown function (or a vendor-defined one: an Integer PKCS#11 Function) answers
CKR_FUNCTION_NOT_SUPPORTED whatever the Correlation Value: that is the server's, not the
session's, property. A PKCS#11 Interface other than the default ``PKCS 11`` (PKCS#11 3.0
§5.2) answers CKR_ARGUMENTS_BAD.

Each of these is a Success result carrying its PKCS#11 Return Code, as a PKCS#11
function returns its CK_RV. KMIP failures: no PKCS#11 Function, or a field of the wrong
type, is Invalid_Field. No permission beyond an authenticated caller is needed (nothing
is read or changed but the description of the server, as for Query); the batch item's
own audit record is ``kmip.pkcs_11``, and an event of the same request names the
function and its return code (never the Correlation Value).
"""

from __future__ import annotations

from collections.abc import Callable

from keykeeper.errors import Unauthenticated
from keykeeper.kmip import pkcs11_info as info
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.pkcs11_sessions import Pkcs11Sessions
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, PKCS11Function, PKCS11ReturnCode, enum_name
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["DEFAULT_INTERFACE", "MAX_INITIALIZE_ARGS", "OPERATION", "SERVED", "handle"]

OPERATION = Operation.PKCS_11
DEFAULT_INTERFACE = "PKCS 11"
MAX_INITIALIZE_ARGS = 64  # bytes of C_Initialize's input parameters, not interpreted

Fn = PKCS11Function
RV = PKCS11ReturnCode
_Answer = tuple[PKCS11ReturnCode, bytes | None]


def _no_input(data: bytes | None) -> None:
    if data:
        raise info.ArgumentsBad("this function takes no input parameters")


def _slot(data: bytes | None, count: int = 1) -> tuple[int, ...] | None:
    """The input CK_ULONGs, slotID first; None when the slot is not keykeeper's."""
    values = info.read_ulongs(data, count)
    return values if values[0] == info.SLOT_ID else None


def _get_info(data: bytes | None) -> _Answer:
    _no_input(data)
    return RV.OK, info.ck_info()


def _get_slot_list(data: bytes | None) -> _Answer:
    info.read_bool(data)  # tokenPresent: the one slot always holds its token
    return RV.OK, info.slot_list()


def _slot_answer(build: Callable[[], bytes]) -> Callable[[bytes | None], _Answer]:
    def answer(data: bytes | None) -> _Answer:
        return (RV.OK, build()) if _slot(data) else (RV.SLOT_ID_INVALID, None)
    return answer


def _get_mechanism_info(data: bytes | None) -> _Answer:
    values = _slot(data, 2)
    if values is None:
        return RV.SLOT_ID_INVALID, None
    out = info.mechanism_info(values[1])
    return (RV.MECHANISM_INVALID, None) if out is None else (RV.OK, out)


# Served functions that need a live Correlation Value (C_Initialize and C_Finalize are
# handled in ``handle``): input parameters -> (return code, output parameters).
_INFO_FUNCTIONS: dict[int, Callable[[bytes | None], _Answer]] = {
    Fn.C_GETINFO: _get_info,
    Fn.C_GETSLOTLIST: _get_slot_list,
    Fn.C_GETSLOTINFO: _slot_answer(info.ck_slot_info),
    Fn.C_GETTOKENINFO: _slot_answer(info.ck_token_info),
    Fn.C_GETMECHANISMLIST: _slot_answer(info.mechanism_list),
    Fn.C_GETMECHANISMINFO: _get_mechanism_info,
}
SERVED = frozenset({int(Fn.C_INITIALIZE), int(Fn.C_FINALIZE), *_INFO_FUNCTIONS})


def _bytes_field(payload: Item, tag: int, name: str) -> bytes | None:
    item = payload.find(tag)
    if item is None:
        return None
    if item.type is not ItemType.BYTE_STRING or not isinstance(item.value, bytes):
        raise KmipError("Invalid_Field", f"{name} must be a Byte String")
    return item.value


def _function(payload: Item) -> tuple[Item, int]:
    """The PKCS#11 Function item and its value (-1 for a vendor-defined Integer one)."""
    item = payload.find(Tag.PKCS_11_FUNCTION)
    if item is None or item.type not in (ItemType.ENUMERATION, ItemType.INTEGER) \
            or isinstance(item.value, bool) or not isinstance(item.value, int):
        raise KmipError("Invalid_Field", "PKCS#11 needs a PKCS#11 Function (an Enumeration,"
                        " or an Integer for a vendor-defined function)")
    return item, -1 if item.type is ItemType.INTEGER else item.value


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: PKCS#11 Interface?, PKCS#11 Function, Correlation Value?, PKCS#11 Input
    Parameters?; response: PKCS#11 Function (as sent), Correlation Value (C_Initialize
    only), PKCS#11 Output Parameters?, PKCS#11 Return Code. Raises KmipError
    (Invalid_Field) without a PKCS#11 Function or for a field of the wrong type,
    KmipError(Operation_Not_Supported) on a processor that keeps no PKCS#11 sessions,
    Unauthenticated without a principal."""
    function, fn = _function(payload)
    interface = payload.find(Tag.PKCS_11_INTERFACE)
    if interface is not None and interface.type is not ItemType.TEXT_STRING:
        raise KmipError("Invalid_Field", "PKCS#11 Interface must be a Text String")
    value = _bytes_field(payload, Tag.CORRELATION_VALUE, "Correlation Value")
    data = _bytes_field(payload, Tag.PKCS_11_INPUT_PARAMETERS, "PKCS#11 Input Parameters")
    sessions = call.pkcs11
    if sessions is None:
        raise KmipError("Operation_Not_Supported", "PKCS#11 is not served on this interface")
    if call.ctx.principal is None:
        raise Unauthenticated("authentication required")
    who = call.ctx.principal.name
    new_value: bytes | None = None
    output: bytes | None = None
    if interface is not None and interface.value != DEFAULT_INTERFACE:
        code = RV.ARGUMENTS_BAD
    elif fn not in SERVED:
        code = RV.FUNCTION_NOT_SUPPORTED
    elif fn == Fn.C_INITIALIZE:
        code, new_value = _initialize(sessions, who, value, data,
                                      call.services.deps.on_rollback)
    elif value is None or not sessions.live(value, who):
        code = RV.CRYPTOKI_NOT_INITIALIZED
    else:
        try:
            if fn == Fn.C_FINALIZE:
                if data not in (None, b"", b"\x00"):
                    raise info.ArgumentsBad("pReserved must be NULL_PTR")
                sessions.close(value, who)
                closed = value
                call.services.deps.on_rollback(lambda: sessions.restore(closed, who))
                code = RV.OK
            else:
                code, output = _INFO_FUNCTIONS[fn](data)
        except info.ArgumentsBad:
            code = RV.ARGUMENTS_BAD
    name = enum_name(Tag.PKCS_11_FUNCTION, fn) or ("vendor-defined" if fn < 0 else hex(fn))
    call.services.audit.note("kmip.pkcs_11", detail=f"{name}: {code.name}", ctx=call.ctx)
    out = [function]
    if new_value is not None:
        out.append(Item(Tag.CORRELATION_VALUE, ItemType.BYTE_STRING, new_value))
    if output is not None:
        out.append(Item(Tag.PKCS_11_OUTPUT_PARAMETERS, ItemType.BYTE_STRING, output))
    out.append(Item(Tag.PKCS_11_RETURN_CODE, ItemType.ENUMERATION, int(code)))
    return out


def _initialize(sessions: Pkcs11Sessions, who: str, value: bytes | None,
                data: bytes | None, on_rollback: Callable[[Callable[[], None]], None],
                ) -> _Answer:
    """C_Initialize: (return code, the new Correlation Value or None); a new value is
    closed again if an Undo batch rolls back (``on_rollback``: Deps.on_rollback)."""
    if value is not None and sessions.live(value, who):
        return RV.CRYPTOKI_ALREADY_INITIALIZED, None
    if data is not None and len(data) > MAX_INITIALIZE_ARGS:
        return RV.ARGUMENTS_BAD, None
    opened = sessions.open(who)

    def close() -> None:   # Deps.on_rollback takes a function returning None
        sessions.close(opened, who)
    on_rollback(close)
    return RV.OK, opened
