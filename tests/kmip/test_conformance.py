"""The OASIS KMIP Profiles test cases against the live server (issue 5 §4), and the
runner's own rules (placeholders, tolerances, summary) on hand-made messages.

The live run replays every mandatory file of KMIP 1.4 and 2.1 (../shared/vectors/kmip),
prints the table per profile, and asserts:
* every file that is neither in conformance_skips.toml nor in
  conformance_expected_failures.toml passes (a regression fails the test);
* every file in conformance_expected_failures.toml still fails (one that passes now must
  come off the list, so the list only shrinks);
* the two lists name existing files and do not overlap.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keykeeper.cli.main import app
from keykeeper.kmip.conformance import report
from keykeeper.kmip.conformance.bind import Bindings, UnboundPlaceholder, now_offset
from keykeeper.kmip.conformance.compare import compare_response
from keykeeper.kmip.conformance.runner import (
    FileResult,
    Target,
    case_files,
    load_list,
    run_file,
    run_paths,
)
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.ttlv.xml import from_xml, iter_xml_messages
from tests.kmip.conftest import KmipServer
from tests.kmip.operator_policy import kmip_operator_policy  # noqa: F401 (fixture)

HERE = Path(__file__).parent
VECTORS = HERE.parents[1].parent / "shared" / "vectors" / "kmip"
MANDATORY = {"v1.4": VECTORS / "v1.4" / "XML" / "mandatory",
             "v2.1": VECTORS / "v2.1" / "XML" / "mandatory"}
SKIPS = load_list(HERE / "conformance_skips.toml")
EXPECTED_FAILURES = load_list(HERE / "conformance_expected_failures.toml")

needs_vectors = pytest.mark.skipif(not VECTORS.is_dir(), reason=f"no test vectors at {VECTORS}")


def _target(server: KmipServer) -> Target:
    ctx = ssl.create_default_context(cafile=str(server.ca))
    ctx.load_cert_chain(str(server.client_cert), str(server.client_key))
    return Target(server.host, server.port, ctx, timeout=60.0,
                  https=server.rest_url.removeprefix("https://"))


# -- the lists ----------------------------------------------------------------------------
@needs_vectors
def test_lists_name_existing_files_and_do_not_overlap() -> None:
    names = {f.name for f in VECTORS.rglob("*.xml")}
    assert not set(SKIPS) - names, "skip list names unknown files"
    assert not set(EXPECTED_FAILURES) - names, "expected-failure list names unknown files"
    assert not set(SKIPS) & set(EXPECTED_FAILURES)
    assert all(reason.strip() for reason in [*SKIPS.values(), *EXPECTED_FAILURES.values()])


def test_profile_of() -> None:
    assert report.profile_of("CS-BC-M-GCM-1-21.xml") == "CS-BC"
    assert report.profile_of("CS-AC-M-OAEP-10-14.xml") == "CS-AC"
    assert report.profile_of("SUITEB_128-M-1-14.xml") == "SUITEB"
    assert report.profile_of("MSGENC-HTTPS-M-1-21.xml") == "MSGENC"
    assert report.profile_of("AX-M-1-21.xml") == "AX"
    assert report.profile_of("NEW-PROFILE-O-1-21.xml") == "NEW-PROFILE"


def test_table_counts_per_profile() -> None:
    results = [FileResult("SKLC-M-1-21.xml", "SKLC", "passed"),
               FileResult("SKLC-M-2-21.xml", "SKLC", "failed", "step 3: x"),
               FileResult("OMOS-M-1-21.xml", "OMOS", "skipped", "opaque objects")]
    text = report.table(results)
    lines = text.splitlines()
    assert lines[0].split() == ["profile", "passed", "failed", "skipped"]
    assert lines[1].split() == ["OMOS", "0", "0", "1"]
    assert lines[2].split() == ["SKLC", "1", "1", "0"]
    assert lines[3].split() == ["total", "1", "1", "1"]
    assert "  SKLC-M-2-21.xml: step 3: x" in lines and "  OMOS-M-1-21.xml: opaque objects" in lines
    assert report.as_json(results)["profiles"]["SKLC"] == {"passed": 1, "failed": 1,
                                                           "skipped": 0}


@needs_vectors
def test_profile_filter_selects_by_prefix() -> None:
    files = case_files([MANDATORY["v2.1"]], "CS-BC")
    assert files and all(f.name.startswith("CS-BC-") for f in files)
    assert len(case_files([MANDATORY["v2.1"]])) == 86


# -- placeholders -------------------------------------------------------------------------
def _text(tag: int, value: str) -> Item:
    return Item(tag, ItemType.TEXT_STRING, value)


def test_bind_request_now_uids_and_literals() -> None:
    b = Bindings()
    assert now_offset("$NOW-3600") == -3600 and now_offset("$NOW+5") == 5
    assert now_offset("$NOW") == 0 and now_offset("$UNIQUE_IDENTIFIER_0") is None
    req = Item.structure(Tag.REQUEST_PAYLOAD, [
        _text(Tag.UNIQUE_IDENTIFIER, "$UNIQUE_IDENTIFIER_0"),
        Item(Tag.ACTIVATION_DATE, ItemType.DATE_TIME, "$NOW-3600"),
        Item(Tag.DATA, ItemType.BYTE_STRING, b"\x01\x02")])
    with pytest.raises(UnboundPlaceholder):
        b.bind_request(req, 1000)
    assert b.learn("$UNIQUE_IDENTIFIER_0", "k-1/1")
    assert not b.learn("$UNIQUE_IDENTIFIER_0", "k-2/1")  # numbered: bound once
    assert b.learn("$IV_COUNTER_NONCE", b"a") and b.learn("$IV_COUNTER_NONCE", b"b")
    b.literals[b"\x01\x02"] = b"\x09"
    bound = b.bind_request(req, 10_000)
    assert [c.value for c in bound.children] == ["k-1/1", 10_000 - 3600, b"\x09"]
    assert b.uids == ["k-1/1"]


# -- comparison ---------------------------------------------------------------------------
_RESPONSE = """<ResponseMessage>
  <ResponseHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="2"/>
      <ProtocolVersionMinor type="Integer" value="1"/>
    </ProtocolVersion>
    <TimeStamp type="DateTime" value="{stamp}"/>
    <BatchCount type="Integer" value="1"/>
  </ResponseHeader>
  <BatchItem>
    <Operation type="Enumeration" value="{op}"/>
    <ResultStatus type="Enumeration" value="Success"/>
    <ResponsePayload>{payload}</ResponsePayload>
  </BatchItem>
</ResponseMessage>"""

_REQUEST = """<RequestMessage>
  <RequestHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="2"/>
      <ProtocolVersionMinor type="Integer" value="1"/>
    </ProtocolVersion>
    <BatchCount type="Integer" value="1"/>
  </RequestHeader>
  <BatchItem>
    <Operation type="Enumeration" value="{op}"/>
    <RequestPayload>{payload}</RequestPayload>
  </BatchItem>
</RequestMessage>"""

NOW = 1_700_000_000
NOW_TEXT = "2023-11-14T22:13:20+00:00"


def _response(op: str, payload: str, stamp: str = NOW_TEXT) -> Item:
    """A Response Message; expected ones (with placeholders) are made with stamp $NOW."""
    return from_xml(_RESPONSE.format(op=op, payload=payload, stamp=stamp),
                    parse_placeholders=True)


def _request(op: str, payload: str = "") -> Item:
    return from_xml(_REQUEST.format(op=op, payload=payload), parse_placeholders=True)


def _uid(value: str) -> str:
    return f'<UniqueIdentifier type="TextString" value="{value}"/>'


def test_compare_binds_uid_and_tolerates_time_stamp() -> None:
    b = Bindings()
    expected = _response("Create", '<ObjectType type="Enumeration" value="SymmetricKey"/>'
                         + _uid("$UNIQUE_IDENTIFIER_0"), stamp="$NOW")
    actual = _response("Create", '<ObjectType type="Enumeration" value="SymmetricKey"/>'
                       + _uid("k-1/1"), stamp="2001-01-01T00:00:00+00:00")
    assert compare_response(expected, actual, _request("Create"), b, NOW) is None
    assert b.values["$UNIQUE_IDENTIFIER_0"] == "k-1/1" and "k-1/1" in b.generated
    other = _response("Create", '<ObjectType type="Enumeration" value="SymmetricKey"/>'
                      + _uid("k-2/1"))
    mm = compare_response(expected, other, _request("Create"), b, NOW)
    assert mm is not None and mm.path.endswith("UniqueIdentifier")


def test_compare_reports_first_mismatch_without_key_material() -> None:
    b = Bindings()
    b.learn("$UNIQUE_IDENTIFIER_0", "k-1/1")  # registered, not generated: exact
    block = ('<SymmetricKey><KeyBlock><KeyFormatType type="Enumeration" value="Raw"/>'
             '<KeyValue><KeyMaterial type="ByteString" value="{}"/></KeyValue>'
             '</KeyBlock></SymmetricKey>')
    obj = '<ObjectType type="Enumeration" value="SymmetricKey"/>'
    expected = _response("Get", obj + _uid("$UNIQUE_IDENTIFIER_0") + block.format("00" * 16))
    actual = _response("Get", obj + _uid("k-1/1") + block.format("ab" * 16))
    mm = compare_response(expected, actual, _request("Get"), b, NOW)
    assert mm is not None
    assert mm.path.endswith("/KeyValue/KeyMaterial")
    assert "ab" * 4 not in str(mm) and "16 bytes" in str(mm)
    b.generated.add("k-1/1")  # the server's own key: its material is its choice (T6)
    assert compare_response(expected, actual, _request("Get"), b, NOW) is None


def test_compare_now_window_and_result_message() -> None:
    b = Bindings()
    b.learn("$UNIQUE_IDENTIFIER_0", "k-1/1")
    expected = _response("GetAttributes", _uid("$UNIQUE_IDENTIFIER_0")
                         + '<Attributes><InitialDate type="DateTime" value="$NOW"/>'
                         '</Attributes>')
    ok = _response("GetAttributes", _uid("k-1/1") + '<Attributes><InitialDate '
                   f'type="DateTime" value="{NOW_TEXT}"/></Attributes>')
    late = _response("GetAttributes", _uid("k-1/1") + '<Attributes><InitialDate '
                     'type="DateTime" value="2020-01-01T00:00:00+00:00"/></Attributes>')
    req = _request("GetAttributes", _uid("k-1/1"))
    assert compare_response(expected, ok, req, b, NOW + 5) is None
    mm = compare_response(expected, late, req, b, NOW)
    assert mm is not None and "InitialDate" in mm.path


def test_compare_get_attributes_any_order_and_extras_when_all_asked() -> None:
    b = Bindings()
    b.learn("$UNIQUE_IDENTIFIER_0", "k-1/1")
    state = '<State type="Enumeration" value="Active"/>'
    length = '<CryptographicLength type="Integer" value="256"/>'
    alg = '<CryptographicAlgorithm type="Enumeration" value="AES"/>'
    expected = _response("GetAttributes", _uid("$UNIQUE_IDENTIFIER_0")
                         + f"<Attributes>{state}{length}</Attributes>")
    actual = _response("GetAttributes", _uid("k-1/1") + f"<Attributes>{length}{state}{alg}"
                       "</Attributes>")
    all_req = _request("GetAttributes", _uid("k-1/1"))
    named = _request("GetAttributes", _uid("k-1/1") + '<AttributeReference type="Enumeration"'
                     ' value="State"/>')
    assert compare_response(expected, actual, all_req, b, NOW) is None
    mm = compare_response(expected, actual, named, b, NOW)
    assert mm is not None and "CryptographicAlgorithm" in mm.path


def test_compare_server_chosen_iv_is_rebound_for_decrypt() -> None:
    b = Bindings()
    b.learn("$UNIQUE_IDENTIFIER_0", "k-1/1")
    expected = _response("Encrypt", _uid("$UNIQUE_IDENTIFIER_0")
                         + '<Data type="ByteString" value="0011"/>'
                         '<IVCounterNonce type="ByteString" value="aaaa"/>')
    actual = _response("Encrypt", _uid("k-1/1") + '<Data type="ByteString" value="7788"/>'
                       '<IVCounterNonce type="ByteString" value="bbbb"/>')
    assert compare_response(expected, actual, _request("Encrypt", _uid("k-1/1")), b,
                            NOW) is None
    decrypt = _request("Decrypt", _uid("$UNIQUE_IDENTIFIER_0")
                       + '<Data type="ByteString" value="0011"/>'
                       '<IVCounterNonce type="ByteString" value="aaaa"/>')
    payload = b.bind_request(decrypt, NOW).find(Tag.BATCH_ITEM)
    assert payload is not None
    values = [c.value for c in payload.children[1].children]
    assert values == ["k-1/1", b"\x77\x88", b"\xbb\xbb"]


def test_compare_failure_status_shows_reason() -> None:
    expected = _response("Destroy", _uid("$UNIQUE_IDENTIFIER_0"))
    actual = from_xml(_RESPONSE.replace(
        '<ResultStatus type="Enumeration" value="Success"/>',
        '<ResultStatus type="Enumeration" value="OperationFailed"/>'
        '<ResultReason type="Enumeration" value="PermissionDenied"/>'
        '<ResultMessage type="TextString" value="no"/>').format(
            op="Destroy", payload="", stamp=NOW_TEXT))
    mm = compare_response(expected, actual, _request("Destroy"), Bindings(), NOW)
    assert mm is not None and mm.path.endswith("ResultStatus")
    assert "PermissionDenied" in mm.actual


def test_compare_names_the_item_that_undid_the_batch() -> None:
    from keykeeper.kmip.messages import response_item, response_message
    from keykeeper.kmip.ttlv.enums import Operation, ResultReason, ResultStatus

    def answer(*items: Item) -> Item:
        return response_message((2, 1), list(items), now=NOW)

    create, get = int(Operation.CREATE), int(Operation.GET)
    expected = answer(response_item(create, int(ResultStatus.SUCCESS), payload=[]),
                      response_item(get, int(ResultStatus.SUCCESS), payload=[]))
    actual = answer(response_item(create, int(ResultStatus.OPERATION_UNDONE), payload=[]),
                    response_item(get, int(ResultStatus.OPERATION_FAILED),
                                  reason=int(ResultReason.PERMISSION_DENIED), message="no"))
    request = from_xml(_REQUEST.format(op="Create", payload=""), parse_placeholders=True)
    mm = compare_response(expected, actual, request, Bindings(), NOW)
    assert mm is not None and mm.path.endswith("BatchItem[0]/ResultStatus")
    assert "the batch was undone: BatchItem[1] failed (PermissionDenied: no)" in mm.actual


@needs_vectors
def test_every_mandatory_file_reads_as_request_response_pairs() -> None:
    unreadable = []
    for directory in MANDATORY.values():
        for f in sorted(directory.glob("*.xml")):
            try:
                messages = iter_xml_messages(f.read_text(encoding="utf-8"))
            except ValueError as exc:
                unreadable.append(f"{f.name}: {exc}")
                continue
            tags = [m.tag for m in messages]
            assert tags == [Tag.REQUEST_MESSAGE, Tag.RESPONSE_MESSAGE] * (len(tags) // 2), f
    listed = {n for n in unreadable if n.split(":")[0] in SKIPS or n.split(":")[0]
              in EXPECTED_FAILURES}
    assert set(unreadable) == listed, unreadable


# -- the live run -------------------------------------------------------------------------
@needs_vectors
@pytest.mark.parametrize("version", sorted(MANDATORY))
@pytest.mark.usefixtures("kmip_operator_policy")
def test_mandatory_test_cases(kmip_server: KmipServer, version: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    results = run_paths([MANDATORY[version]], _target(kmip_server), skips=SKIPS)
    with capsys.disabled():
        print(f"\nKMIP {version} mandatory test cases\n{report.table(results)}")
    failed = {r.name: r.detail for r in results if r.status == "failed"}
    passed = {r.name for r in results if r.status == "passed"}
    regressions = {n: d for n, d in failed.items() if n not in EXPECTED_FAILURES}
    now_passing = sorted(passed & set(EXPECTED_FAILURES))
    assert not regressions, "files that must pass failed:\n" + "\n".join(
        f"{n}: {d}" for n, d in sorted(regressions.items()))
    assert not now_passing, ("these files pass now: take them off "
                             f"conformance_expected_failures.toml: {now_passing}")
    assert len(results) == len(list(MANDATORY[version].glob("*.xml")))


@needs_vectors
@pytest.mark.usefixtures("kmip_operator_policy")
def test_cli_runs_a_profile(kmip_server: KmipServer) -> None:
    result = CliRunner().invoke(app, [
        "--format", "json", "kmip", "conformance", str(MANDATORY["v2.1"]),
        "--server", f"{kmip_server.host}:{kmip_server.port}", "--ca", str(kmip_server.ca),
        "--cert", str(kmip_server.client_cert), "--key", str(kmip_server.client_key),
        "--profile", "SKLC", "--skip-list", str(HERE / "conformance_skips.toml")])
    summary = json.loads(result.stdout)
    assert [f["name"] for f in summary["files"]] == [
        "SKLC-M-1-21.xml", "SKLC-M-2-21.xml", "SKLC-M-3-21.xml"]
    failed = [f for f in summary["files"] if f["status"] == "failed"]
    assert result.exit_code == (1 if failed else 0)
    assert {f["name"] for f in failed} <= set(EXPECTED_FAILURES)


@needs_vectors
def test_cli_shares_generated_objects_across_files(kmip_server: KmipServer) -> None:
    """TL-M-3 gets the key TL-M-2 generated: its material is the server's (tolerance T6)
    only if the command carries what the server generated from one file to the next."""
    result = CliRunner().invoke(app, [
        "--format", "json", "kmip", "conformance", str(MANDATORY["v2.1"]),
        "--server", f"{kmip_server.host}:{kmip_server.port}", "--ca", str(kmip_server.ca),
        "--cert", str(kmip_server.client_cert), "--key", str(kmip_server.client_key),
        "--profile", "TL", "--skip-list", str(HERE / "conformance_skips.toml")])
    statuses = {f["name"]: f["status"] for f in json.loads(result.stdout)["files"]}
    assert statuses == {"TL-M-1-21.xml": "passed", "TL-M-2-21.xml": "passed",
                        "TL-M-3-21.xml": "passed"}


def test_cli_refuses_a_bad_server_address(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["kmip", "conformance", str(tmp_path), "--server",
                                      "no-port"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


@needs_vectors
@pytest.mark.usefixtures("kmip_operator_policy")
def test_failed_file_reports_step_and_cleans_up(kmip_server: KmipServer,
                                                tmp_path: Path) -> None:
    """A test case whose expectation is wrong fails at that step with the path, and the
    object it created is revoked and destroyed afterwards."""
    text = (MANDATORY["v2.1"] / "SKLC-M-1-21.xml").read_text(encoding="utf-8")
    broken = tmp_path / "SKLC-M-1-21.xml"
    first = text.index('<ObjectType type="Enumeration" value="SymmetricKey"/>',
                       text.index("<ResponseMessage>"))
    broken.write_text(text[:first] + text[first:].replace('value="SymmetricKey"',
                                                          'value="SecretData"', 1))
    result = run_file(broken, _target(kmip_server))
    assert result.status == "failed"
    assert result.detail.startswith("step 1: ") and "ObjectType" in result.detail
    assert "SecretData" in result.detail and "SymmetricKey" in result.detail


def test_encrypt_outputs_bind_for_later_requests_even_when_written_as_literals() -> None:
    """KMIP 1.4 CS-BC-M-13 writes the Encrypt answer as literals and names the outputs
    ($DATA_0, $IV_COUNTER_NONCE) in the next request."""
    b = Bindings()
    b.learn("$UNIQUE_IDENTIFIER_0", "k-1/1")
    expected = _response("Encrypt", _uid("$UNIQUE_IDENTIFIER_0")
                         + '<Data type="ByteString" value="0011"/>'
                         '<IVCounterNonce type="ByteString" value="aaaa"/>', stamp="$NOW")
    actual = _response("Encrypt", _uid("k-1/1") + '<Data type="ByteString" value="7788"/>'
                       '<IVCounterNonce type="ByteString" value="bbbb"/>')
    assert compare_response(expected, actual, _request("Encrypt", _uid("k-1/1")), b,
                            NOW) is None
    assert b.values["$DATA_0"] == b"\x77\x88"
    assert b.values["$IV_COUNTER_NONCE"] == b"\xbb\xbb"


def test_compare_query_checks_kinds_not_values() -> None:
    ops = ('<Operation type="Enumeration" value="Create"/>'
           '<Operation type="Enumeration" value="Certify"/>')
    expected = _response("Query", ops + '<VendorIdentification type="TextString" value="X"/>',
                         stamp="$NOW")
    ours = _response("Query", '<Operation type="Enumeration" value="Get"/>'
                     '<VendorIdentification type="TextString" value="keykeeper"/>')
    assert compare_response(expected, ours, _request("Query"), Bindings(), NOW) is None
    objects = _response("Query", '<ObjectType type="Enumeration" value="SymmetricKey"/>')
    mm = compare_response(expected, objects, _request("Query"), Bindings(), NOW)
    assert mm is not None and mm.expected == "Operation" and mm.actual == "ObjectType"


def test_compare_random_number_generator_is_the_servers_own() -> None:
    b = Bindings()
    b.learn("$UNIQUE_IDENTIFIER_0", "k-1/1")
    rng = ('<Attribute><AttributeName type="TextString" value="Random Number Generator"/>'
           '<AttributeValue><RNGAlgorithm type="Enumeration" value="{}"/></AttributeValue>'
           '</Attribute>')
    state = ('<Attribute><AttributeName type="TextString" value="State"/>'
             '<AttributeValue type="Enumeration" value="{}"/></Attribute>')
    req = _request("GetAttributes", _uid("k-1/1"))
    expected = _response("GetAttributes", _uid("$UNIQUE_IDENTIFIER_0")
                         + rng.format("ANSIX9_31") + state.format("Active"), stamp="$NOW")
    ours = _response("GetAttributes", _uid("k-1/1") + rng.format("DRBG")
                     + state.format("Active"))
    assert compare_response(expected, ours, req, b, NOW) is None
    other_state = _response("GetAttributes", _uid("k-1/1") + rng.format("DRBG")
                            + state.format("PreActive"))
    mm = compare_response(expected, other_state, req, b, NOW)
    assert mm is not None and "AttributeValue" in mm.path
    assert mm.expected == "Active" and mm.actual == "PreActive"
