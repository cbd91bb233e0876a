"""The PKCS#11 operation (KMIP 2.1 §6.1.37; kmip/ops/pkcs11.py): each served function's
answer and byte layout, the Correlation Value's life (not initialised, finalised, already
initialised, another principal's, the bound on live values), unsupported functions, bad
arguments, KMIP-level refusals (no function, 1.x), Query, the audit trail, and the
conformance comparator's narrow tolerance for C_GetInfo (T10).

In-process, through the real Processor over a real node (tests/integration/conftest.py),
with a peer whose principal each test chooses.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pkcs11.constants import MechanismFlag, SlotFlag, TokenFlag
from pkcs11.mechanisms import Mechanism

from keykeeper import __version__
from keykeeper.audit.records import AuditRecord
from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.conformance.bind import Bindings
from keykeeper.kmip.conformance.compare import compare_response
from keykeeper.kmip.messages import (
    BatchResult,
    batch_item,
    parse_response,
    request_message,
    response_item,
    response_message,
)
from keykeeper.kmip.pkcs11_info import (
    MECHANISMS,
    SLOT_ID,
    ck_info,
    package_version,
)
from keykeeper.kmip.pkcs11_sessions import VALUE_BYTES, Pkcs11Sessions
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    Operation,
    PKCS11Function,
    PKCS11ReturnCode,
    QueryFunction,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.ttlv.xml import iter_xml_messages
from keykeeper.service.context import Principal
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import walk

Fn, RV = PKCS11Function, PKCS11ReturnCode
VECTOR = (Path(__file__).parents[2].parent / "shared" / "vectors" / "kmip" / "v2.1" / "XML"
          / "mandatory" / "PKCS11-M-1-21.xml")


class P11:
    """Sends one-item PKCS#11 requests through a Processor as a chosen principal."""

    def __init__(self, n: Node, sessions: Pkcs11Sessions | None = None) -> None:
        self.node = n
        self.processor = Processor(n.services, KmipSettings(namespace="default"),
                                   pkcs11=sessions)

    def send(self, operation: int, payload: list[Item], who: str = "root",
             version: tuple[int, int] = (2, 1)) -> BatchResult:
        peer = Peer("kmip", None, lambda: Principal(who))
        answer = parse_response(self.processor.process(
            request_message([batch_item(operation, payload)], version=version), peer))
        assert len(answer.items) == 1
        return answer.items[0]

    def __call__(self, function: int, *, cv: bytes | None = None, data: bytes | None = None,
                 who: str = "root", interface: str | None = None,
                 version: tuple[int, int] = (2, 1)) -> BatchResult:
        payload = []
        if interface is not None:
            payload.append(Item(Tag.PKCS_11_INTERFACE, ItemType.TEXT_STRING, interface))
        payload.append(Item(Tag.PKCS_11_FUNCTION, ItemType.ENUMERATION, int(function)))
        if cv is not None:
            payload.append(Item(Tag.CORRELATION_VALUE, ItemType.BYTE_STRING, cv))
        if data is not None:
            payload.append(Item(Tag.PKCS_11_INPUT_PARAMETERS, ItemType.BYTE_STRING, data))
        return self.send(Operation.PKCS_11, payload, who, version)

    def init(self, who: str = "root") -> bytes:
        got = self(Fn.C_INITIALIZE, data=b"\x01", who=who)
        assert code(got) == RV.OK
        cv = field(got, Tag.CORRELATION_VALUE)
        assert isinstance(cv, bytes)
        return cv


def field(result: BatchResult, tag: int) -> object:
    assert result.payload is not None
    item = result.payload.find(tag)
    return None if item is None else item.value


def code(result: BatchResult) -> int:
    """The PKCS#11 Return Code of a KMIP Success (a KMIP failure fails the test)."""
    assert result.status == ResultStatus.SUCCESS, (result.reason, result.message)
    value = field(result, Tag.PKCS_11_RETURN_CODE)
    assert isinstance(value, int)
    return value


def output(result: BatchResult) -> bytes:
    value = field(result, Tag.PKCS_11_OUTPUT_PARAMETERS)
    assert isinstance(value, bytes)
    return value


def ulong(*values: int) -> bytes:
    return b"".join(struct.pack(">Q", v) for v in values)


@pytest.fixture(name="p11")
def p11_fixture(node: Node) -> P11:  # noqa: F811
    return P11(node)


# -- the test case's flow and CK_INFO -------------------------------------------------------
def _blank(text: str, size: int) -> bytes:
    return text.encode().ljust(size, b" ")


def test_initialize_get_info_finalize(p11: P11) -> None:
    got = p11(Fn.C_INITIALIZE, data=b"\x01")
    assert code(got) == RV.OK
    assert field(got, Tag.PKCS_11_FUNCTION) == Fn.C_INITIALIZE
    cv = field(got, Tag.CORRELATION_VALUE)
    assert isinstance(cv, bytes) and len(cv) == VALUE_BYTES
    assert field(got, Tag.PKCS_11_OUTPUT_PARAMETERS) is None

    info = p11(Fn.C_GETINFO, cv=cv)
    assert code(info) == RV.OK
    assert field(info, Tag.CORRELATION_VALUE) is None  # only C_Initialize returns it
    assert [c.tag for c in info.payload.children] == [  # type: ignore[union-attr]
        Tag.PKCS_11_FUNCTION, Tag.PKCS_11_OUTPUT_PARAMETERS, Tag.PKCS_11_RETURN_CODE]
    major, minor = (int(x) for x in __version__.split(".")[:2])
    assert output(info) == (b"\x03\x00" + _blank("keykeeper", 32) + b"\x00" * 8
                            + _blank("keykeeper KMIP PKCS#11", 32) + bytes([major, minor]))

    fin = p11(Fn.C_FINALIZE, cv=cv)
    assert code(fin) == RV.OK and field(fin, Tag.CORRELATION_VALUE) is None
    assert code(p11(Fn.C_GETINFO, cv=cv)) == RV.CRYPTOKI_NOT_INITIALIZED
    assert code(p11(Fn.C_FINALIZE, cv=cv)) == RV.CRYPTOKI_NOT_INITIALIZED


@pytest.mark.skipif(not VECTOR.is_file(), reason=f"no test vector at {VECTOR}")
def test_ck_info_has_the_layout_of_the_test_case() -> None:
    """The vector's CK_INFO: version(2) manufacturerID[32] flags(8) description[32]
    version(2); ours has the same length, blank padding and field places."""
    messages = iter_xml_messages(VECTOR.read_text(encoding="utf-8"))
    found = [i for m in messages for i in walk(m) if i.tag == Tag.PKCS_11_OUTPUT_PARAMETERS]
    assert len(found) == 1 and isinstance(found[0].value, bytes)
    theirs, ours = found[0].value, ck_info()
    assert len(theirs) == len(ours) == 76
    for blob in (theirs, ours):
        assert blob[34:42] == b"\x00" * 8                       # flags: 8-byte CK_ULONG
        assert blob[2:34].rstrip(b" ").isascii() and blob[33:34] == b" "
        assert blob[42:74].rstrip(b" ").isascii() and blob[73:74] == b" "
    assert theirs[:2] == b"\x02\x28"  # Cryptoki 2.40 there; 3.0 here (the KMIP default)
    assert ours[:2] == b"\x03\x00"


def test_package_version() -> None:
    assert package_version("0.5.0") == (0, 5)
    assert package_version("12.3rc1") == (12, 3)
    assert package_version("2") == (2, 0)
    assert package_version("x.y") == (0, 0)
    assert package_version("300.1") == (255, 1)


# -- slots, token, mechanisms ---------------------------------------------------------------
def test_slot_and_token(p11: P11) -> None:
    cv = p11.init()
    for present in (b"\x00", b"\x01"):
        out = output(p11(Fn.C_GETSLOTLIST, cv=cv, data=present))
        assert out == struct.pack(">I", 1) + ulong(SLOT_ID)
    slot = output(p11(Fn.C_GETSLOTINFO, cv=cv, data=ulong(SLOT_ID)))
    assert len(slot) == 108 and slot[:64].rstrip() == b"keykeeper KMIP server"
    assert slot[64:96] == _blank("keykeeper", 32)
    assert struct.unpack(">Q", slot[96:104])[0] == SlotFlag.TOKEN_PRESENT
    token = output(p11(Fn.C_GETTOKENINFO, cv=cv, data=ulong(SLOT_ID)))
    assert len(token) == 204 and token[:32] == _blank("keykeeper", 32)
    flags = struct.unpack(">Q", token[96:104])[0]
    assert flags == TokenFlag.TOKEN_INITIALIZED | TokenFlag.WRITE_PROTECTED
    assert not flags & TokenFlag.LOGIN_REQUIRED
    for fn in (Fn.C_GETSLOTINFO, Fn.C_GETTOKENINFO, Fn.C_GETMECHANISMLIST):
        got = p11(fn, cv=cv, data=ulong(SLOT_ID + 1))
        assert code(got) == RV.SLOT_ID_INVALID
        assert field(got, Tag.PKCS_11_OUTPUT_PARAMETERS) is None


def test_mechanisms(p11: P11) -> None:
    cv = p11.init()
    out = output(p11(Fn.C_GETMECHANISMLIST, cv=cv, data=ulong(SLOT_ID)))
    count = struct.unpack(">I", out[:4])[0]
    types = [struct.unpack(">Q", out[4 + 8 * i:12 + 8 * i])[0] for i in range(count)]
    assert len(out) == 4 + 8 * count and set(types) == set(MECHANISMS)
    assert {Mechanism.AES_GCM, Mechanism.AES_CBC_PAD, Mechanism.RSA_PKCS_OAEP,
            Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.ECDSA_SHA256,
            Mechanism.SHA256_HMAC} <= set(types)
    gcm = output(p11(Fn.C_GETMECHANISMINFO, cv=cv, data=ulong(SLOT_ID, Mechanism.AES_GCM)))
    assert gcm == ulong(16, 32, MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT)
    oaep = output(p11(Fn.C_GETMECHANISMINFO, cv=cv,
                      data=ulong(SLOT_ID, Mechanism.RSA_PKCS_OAEP)))
    assert struct.unpack(">QQ", oaep[:16]) == (3072, 4096)
    for refused in (Mechanism.DES3_CBC, Mechanism.RSA_PKCS, Mechanism.DSA, 0xFFFF_FFFF):
        got = p11(Fn.C_GETMECHANISMINFO, cv=cv, data=ulong(SLOT_ID, refused))
        assert code(got) == RV.MECHANISM_INVALID
    assert code(p11(Fn.C_GETMECHANISMINFO, cv=cv, data=ulong(7, Mechanism.AES_GCM))) \
        == RV.SLOT_ID_INVALID


# -- the Correlation Value ------------------------------------------------------------------
def test_not_initialised(p11: P11) -> None:
    for fn in (Fn.C_GETINFO, Fn.C_FINALIZE, Fn.C_GETSLOTLIST, Fn.C_GETMECHANISMLIST):
        assert code(p11(fn)) == RV.CRYPTOKI_NOT_INITIALIZED
        assert code(p11(fn, cv=b"\x00" * VALUE_BYTES)) == RV.CRYPTOKI_NOT_INITIALIZED
    # the Correlation Value is checked before the input parameters
    assert code(p11(Fn.C_GETINFO, data=b"junk")) == RV.CRYPTOKI_NOT_INITIALIZED


def test_second_initialize(p11: P11) -> None:
    cv = p11.init()
    again = p11(Fn.C_INITIALIZE, cv=cv, data=b"\x01")
    assert code(again) == RV.CRYPTOKI_ALREADY_INITIALIZED
    assert field(again, Tag.CORRELATION_VALUE) is None
    other = p11.init()  # no Correlation Value: a second, independent session
    assert other != cv
    assert code(p11(Fn.C_GETINFO, cv=cv)) == code(p11(Fn.C_GETINFO, cv=other)) == RV.OK
    p11(Fn.C_FINALIZE, cv=cv)
    assert code(p11(Fn.C_GETINFO, cv=other)) == RV.OK
    stale = p11(Fn.C_INITIALIZE, cv=cv)  # a finalised value: initialise afresh
    assert code(stale) == RV.OK and field(stale, Tag.CORRELATION_VALUE) not in (cv, other)


def test_another_principals_correlation_value_is_refused(p11: P11) -> None:
    alice = p11.init("alice")
    assert code(p11(Fn.C_GETINFO, cv=alice, who="bob")) == RV.CRYPTOKI_NOT_INITIALIZED
    assert code(p11(Fn.C_FINALIZE, cv=alice, who="bob")) == RV.CRYPTOKI_NOT_INITIALIZED
    theirs = p11(Fn.C_INITIALIZE, cv=alice, who="bob")  # as for a value never issued
    assert code(theirs) == RV.OK and field(theirs, Tag.CORRELATION_VALUE) != alice
    assert code(p11(Fn.C_GETINFO, cv=alice, who="alice")) == RV.OK  # untouched


def test_sessions_are_bounded(node: Node) -> None:  # noqa: F811
    p11 = P11(node, Pkcs11Sessions(limit=3, per_principal=2))
    a1, a2 = p11.init("alice"), p11.init("alice")
    a3 = p11.init("alice")  # alice's third: her oldest goes
    assert code(p11(Fn.C_GETINFO, cv=a1, who="alice")) == RV.CRYPTOKI_NOT_INITIALIZED
    assert code(p11(Fn.C_GETINFO, cv=a2, who="alice")) == RV.OK
    b1 = p11.init("bob")
    assert len(p11.processor.pkcs11) == 3
    c1 = p11.init("carol")  # the fourth in all: the oldest of all (a2) goes
    assert len(p11.processor.pkcs11) == 3
    assert code(p11(Fn.C_GETINFO, cv=a2, who="alice")) == RV.CRYPTOKI_NOT_INITIALIZED
    for cv, who in ((a3, "alice"), (b1, "bob"), (c1, "carol")):
        assert code(p11(Fn.C_GETINFO, cv=cv, who=who)) == RV.OK


def test_session_table() -> None:
    table = Pkcs11Sessions(limit=2, per_principal=2)
    v1 = table.open("a")
    assert len(v1) == VALUE_BYTES and table.live(v1, "a") and not table.live(v1, "b")
    assert not table.close(v1, "b") and table.close(v1, "a") and not table.live(v1, "a")
    assert not table.close(v1, "a") and len(table) == 0
    values = {table.open("a") for _ in range(50)}
    assert len(values) == 50 and len(table) == 2  # random, and bounded
    with pytest.raises(ValueError):
        Pkcs11Sessions(limit=0)


# -- unsupported functions and bad arguments ------------------------------------------------
def test_unsupported_functions(p11: P11) -> None:
    cv = p11.init()
    for fn in (Fn.C_ENCRYPT, Fn.C_OPENSESSION, Fn.C_GENERATEKEY, Fn.C_GETFUNCTIONLIST,
               Fn.C_LOGIN, Fn.C_GENERATERANDOM):
        for value in (cv, None):
            got = p11(fn, cv=value, data=b"\x00" * 8)
            assert code(got) == RV.FUNCTION_NOT_SUPPORTED
            assert field(got, Tag.PKCS_11_FUNCTION) == fn
            assert field(got, Tag.PKCS_11_OUTPUT_PARAMETERS) is None
    vendor = p11.send(Operation.PKCS_11, [
        Item(Tag.PKCS_11_FUNCTION, ItemType.INTEGER, 0x8000_0001),
        Item(Tag.CORRELATION_VALUE, ItemType.BYTE_STRING, cv)])
    assert code(vendor) == RV.FUNCTION_NOT_SUPPORTED
    echoed = vendor.payload.find(Tag.PKCS_11_FUNCTION)  # type: ignore[union-attr]
    assert echoed is not None and echoed.type is ItemType.INTEGER


def test_bad_arguments(p11: P11) -> None:
    cv = p11.init()
    cases = [(Fn.C_GETINFO, b"\x00"), (Fn.C_GETSLOTLIST, b"\x02"), (Fn.C_GETSLOTLIST, b""),
             (Fn.C_GETSLOTLIST, None), (Fn.C_GETSLOTINFO, b"\x00\x00\x00\x01"),
             (Fn.C_GETTOKENINFO, ulong(SLOT_ID) + b"\x00"), (Fn.C_GETMECHANISMLIST, None),
             (Fn.C_GETMECHANISMINFO, ulong(SLOT_ID)), (Fn.C_FINALIZE, b"\x01")]
    for fn, data in cases:
        got = p11(fn, cv=cv, data=data)
        assert code(got) == RV.ARGUMENTS_BAD, (fn, data)
        assert field(got, Tag.PKCS_11_OUTPUT_PARAMETERS) is None
    assert code(p11(Fn.C_GETINFO, cv=cv)) == RV.OK  # the failed C_Finalize closed nothing
    assert code(p11(Fn.C_INITIALIZE, data=b"\x00" * 65)) == RV.ARGUMENTS_BAD
    assert code(p11(Fn.C_INITIALIZE, data=b"\x00" * 64)) == RV.OK
    assert code(p11(Fn.C_GETINFO, cv=cv, interface="Vendor X")) == RV.ARGUMENTS_BAD
    assert code(p11(Fn.C_GETINFO, cv=cv, interface="PKCS 11")) == RV.OK
    assert code(p11(Fn.C_FINALIZE, cv=cv, data=b"\x00")) == RV.OK


def test_kmip_refusals(p11: P11) -> None:
    cv = p11.init()
    for payload in ([], [Item(Tag.CORRELATION_VALUE, ItemType.BYTE_STRING, cv)],
                    [Item(Tag.PKCS_11_FUNCTION, ItemType.TEXT_STRING, "C_GetInfo")],
                    [Item(Tag.PKCS_11_FUNCTION, ItemType.ENUMERATION, Fn.C_GETINFO),
                     Item(Tag.CORRELATION_VALUE, ItemType.TEXT_STRING, "x")],
                    [Item(Tag.PKCS_11_FUNCTION, ItemType.ENUMERATION, Fn.C_GETINFO),
                     Item(Tag.PKCS_11_INPUT_PARAMETERS, ItemType.INTEGER, 1)]):
        got = p11.send(Operation.PKCS_11, payload)
        assert got.status == ResultStatus.OPERATION_FAILED
        assert got.reason == ResultReason.INVALID_FIELD, payload
    for version in ((1, 4), (1, 0)):
        got = p11(Fn.C_INITIALIZE, data=b"\x01", version=version)
        assert got.status == ResultStatus.OPERATION_FAILED
        assert got.reason == ResultReason.OPERATION_NOT_SUPPORTED
    assert code(p11(Fn.C_GETINFO, cv=cv, version=(2, 0))) == RV.OK


def test_query_lists_pkcs11_in_2x_only(p11: P11) -> None:
    ask = [Item(Tag.QUERY_FUNCTION, ItemType.ENUMERATION, QueryFunction.QUERY_OPERATIONS)]
    for version, listed in (((2, 1), True), ((2, 0), True), ((1, 4), False)):
        got = p11.send(Operation.QUERY, ask, version=version)
        assert got.payload is not None
        ops = {i.value for i in got.payload.find_all(Tag.OPERATION)}
        assert (Operation.PKCS_11 in ops) is listed and Operation.QUERY in ops


def test_audit_names_function_and_return_code_not_the_value(p11: P11, node: Node) -> None:  # noqa: F811
    cv = p11.init("alice")
    p11(Fn.C_GETINFO, cv=cv, who="alice")
    p11(Fn.C_ENCRYPT, cv=cv, who="alice")
    records = [r for r in node.sink.records if isinstance(r, AuditRecord)
               and r.operation == "kmip.pkcs_11"]
    notes = [r.detail for r in records if r.detail]
    assert notes == ["C_Initialize: OK", "C_GetInfo: OK", "C_Encrypt: FUNCTION_NOT_SUPPORTED"]
    assert {r.principal for r in records} == {"alice"}
    assert sum(r.outcome == "success" and not r.detail for r in records) == 3  # the items
    assert cv.hex() not in repr(node.sink.records)


# -- the conformance comparator's tolerance (T10) -------------------------------------------
def _answer(function: int, out: bytes) -> Item:
    payload = [Item(Tag.PKCS_11_FUNCTION, ItemType.ENUMERATION, function),
               Item(Tag.PKCS_11_OUTPUT_PARAMETERS, ItemType.BYTE_STRING, out),
               Item(Tag.PKCS_11_RETURN_CODE, ItemType.ENUMERATION, RV.OK)]
    return response_message((2, 1), [response_item(
        int(Operation.PKCS_11), int(ResultStatus.SUCCESS), payload=payload)], now=0)


def _request(function: int) -> Item:
    return request_message([batch_item(Operation.PKCS_11, [
        Item(Tag.PKCS_11_FUNCTION, ItemType.ENUMERATION, function)])])


def test_comparator_tolerates_only_our_ck_info() -> None:
    theirs = b"\x02\x28" + _blank("TEST      Pty Ltd", 32) + b"\x00" * 8 \
        + _blank("TEST", 32) + b"\x01\x00"
    ours = ck_info()
    expected = _answer(Fn.C_GETINFO, theirs)
    assert compare_response(expected, _answer(Fn.C_GETINFO, ours), _request(Fn.C_GETINFO),
                            Bindings(), 0) is None
    for wrong in (ours + b" ", ours[:34] + b"\x00" * 7 + b"\x01" + ours[42:]):
        mm = compare_response(expected, _answer(Fn.C_GETINFO, wrong),
                              _request(Fn.C_GETINFO), Bindings(), 0)
        assert mm is not None and mm.path.endswith("PKCS_11OutputParameters")
    # any other function's output is compared exactly
    slot = _answer(Fn.C_GETSLOTINFO, theirs)
    assert compare_response(slot, _answer(Fn.C_GETSLOTINFO, ours),
                            _request(Fn.C_GETSLOTINFO), Bindings(), 0) is not None


# -- an Undo batch (Batch Error Continuation Option Undo, KMIP 2.1 §8.2) --------------------
def _undo_batch(p11: P11, *items: Item, who: str = "root") -> list[BatchResult]:
    """One Undo batch of ``items`` (batch items) as ``who``; its answers."""
    peer = Peer("kmip", None, lambda: Principal(who))
    message = request_message(list(items), continuation=BatchErrorContinuationOption.UNDO)
    return parse_response(p11.processor.process(message, peer)).items


def _p11_item(function: int, cv: bytes | None = None) -> Item:
    payload = [Item(Tag.PKCS_11_FUNCTION, ItemType.ENUMERATION, int(function))]
    if cv is not None:
        payload.append(Item(Tag.CORRELATION_VALUE, ItemType.BYTE_STRING, cv))
    return batch_item(Operation.PKCS_11, payload)


_FAILING = batch_item(Operation.PKCS_11, [])   # no PKCS#11 Function: Invalid_Field


def test_an_undone_batch_takes_back_its_initialize_and_finalize(p11: P11) -> None:
    """An undone C_Initialize leaves no live value behind (its answer, Operation_Undone,
    does not carry it: it would only fill the caller's bound), and an undone C_Finalize
    leaves the value live (the caller was told it did not happen)."""
    cv = p11.init()
    table = p11.processor.pkcs11
    assert len(table) == 1
    got = _undo_batch(p11, _p11_item(Fn.C_INITIALIZE), _p11_item(Fn.C_FINALIZE, cv),
                      _FAILING)
    assert [r.status for r in got] == [ResultStatus.OPERATION_UNDONE] * 2 + [
        ResultStatus.OPERATION_FAILED]
    assert all(r.payload is None or r.payload.find(Tag.CORRELATION_VALUE) is None
               for r in got)
    assert len(table) == 1
    assert code(p11(Fn.C_GETINFO, cv=cv)) == RV.OK
    # committed, both take effect
    done = _undo_batch(p11, _p11_item(Fn.C_INITIALIZE), _p11_item(Fn.C_FINALIZE, cv))
    assert [r.status for r in done] == [ResultStatus.SUCCESS] * 2
    new = field(done[0], Tag.CORRELATION_VALUE)
    assert isinstance(new, bytes) and len(table) == 1
    assert code(p11(Fn.C_GETINFO, cv=cv)) == RV.CRYPTOKI_NOT_INITIALIZED
    assert code(p11(Fn.C_GETINFO, cv=new)) == RV.OK
