"""Adversarial review of KMIP Certificates (kmip/certificate.py): hostile DER, the version
rules of the certificate attributes, authorization, and the same object made over REST.

Each finding is a test named after it (fixed ones say so); the other tests pin behaviour a
plausible change would break. Hostile certificates are raw DER (tests/kmip/certificate_der.py).
"""

from __future__ import annotations

import base64
import datetime
import secrets
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from keykeeper.crypto.stored import MAX_STORED_BYTES
from keykeeper.errors import KeykeeperError
from keykeeper.kmip.certificate import der_attributes
from keykeeper.kmip.messages import batch_item, request_message
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    DigitalSignatureAlgorithm,
    ObjectType,
    Operation,
    ResultReason,
    RevocationReasonCode,
    State,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.ttlv.xml import to_xml
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip import certificate_der as d
from tests.kmip.kmip_attr_helpers import V14, V21, one, principal_cert, v1_attr
from tests.kmip.objects_support import (
    Kmip,
    enum,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    live_call,
    name_value,
    reason_of,
    struct,
    template,
    text,
    uid_of,
)
from tests.kmip.test_ops_certificate import _attributes, _certificate, _locate, _make_certificate
from tests.transfer.client_side import wrap


def _register(kmip: Kmip, der: bytes) -> str:
    return uid_of(kmip(Operation.REGISTER, enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE),
                       template(kmip.version), _certificate(der)))


def _values(attrs: dict[str, list[Item]], name: str) -> list[Any]:
    return [v.value for v in attrs.get(name, [])]


def _field(item: Item, tag: int) -> Any:
    got = item.find(int(tag))
    assert got is not None, f"no {Tag(tag).name} in {item}"
    return got.value


# -- hostile DER ----------------------------------------------------------------------------


# Finding 1 (fixed in crypto/stored.py): a certificate whose version field is not v1-v3
# made Register fail with General_Failure (pyca raises InvalidVersion, not a ValueError).
def test_register_of_unknown_x509_version_is_invalid_field(kmip: Kmip) -> None:
    with pytest.raises(KeykeeperError) as refused:
        _register(kmip, d.der(version=5))
    assert reason_of(refused.value) == "Invalid_Field"
    assert _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE)) == []


_SAN_GOOD = d.ext(d.SAN, d.seq(d.tlv(0x82, b"good.example.test")))
_UNREADABLE_EXTENSIONS = {
    # RFC 5280 names pyca does not model: .extensions raises UnsupportedGeneralNameType
    "x400Address": [d.ext(d.SAN, d.seq(d.tlv(0xA3, d.seq())))],
    "ediPartyName": [d.ext(d.SAN, d.seq(d.tlv(0xA5, d.seq())))],
    # RFC 5280 §4.2 forbids it: DuplicateExtension
    "duplicate SAN": [_SAN_GOOD, _SAN_GOOD],
    # a known extension whose value does not parse (ValueError): the valid SAN beside it
    # was silently dropped from X.509 Certificate Subject
    "bad keyUsage": [_SAN_GOOD, d.ext(d.KEY_USAGE, b"\x05\x00")],
}


# Finding 2 (fixed in crypto/stored.py and kmip/certificate.py): a certificate whose
# extensions pyca reads lazily and cannot read was stored; then Get Attributes and Get
# Attribute List failed with General_Failure for it, and every later Locate naming a
# certificate attribute (Certificate Subject CN, ...) failed with General_Failure for
# every caller who could see it (one Register broke Locate for the namespace). Register
# now refuses it (Invalid_Field); read paths no longer crash on one.
@pytest.mark.parametrize("case", sorted(_UNREADABLE_EXTENSIONS))
def test_certificate_with_unreadable_extensions_is_refused_or_served(kmip: Kmip,
                                                                     case: str) -> None:
    der = d.der(extensions=_UNREADABLE_EXTENSIONS[case])
    der_attributes(der)   # the read paths' own parsing never raises for one
    try:
        uid = _register(kmip, der)
    except KeykeeperError as refused:
        assert reason_of(refused) == "Invalid_Field", refused
        assert "extensions" in str(refused.detail)
        return
    # Stored: every read path must answer, and consistently with the DER.
    attrs = _attributes(kmip, uid)
    kmip(Operation.GET_ATTRIBUTE_LIST, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert _locate(kmip, Certificate_Subject_CN=text(Tag.CERTIFICATE_SUBJECT_CN,
                                                     "leaf")) == [uid]
    if _SAN_GOOD in _UNREADABLE_EXTENSIONS[case]:
        (subject,) = attrs["X.509 Certificate Subject"]
        assert subject.find(int(Tag.SUBJECT_ALTERNATIVE_NAME)) is not None


# Finding 3 (fixed in kmip/certificate.py): X.509 Certificate Identifier's serial number
# is the DER INTEGER's content octets, but a negative serial of -2^(8k-1) (-128: 0x80)
# was served non-minimal (0xff80), so it matched no other system's value.
@pytest.mark.parametrize("content", [b"\x80", b"\x80\x00", b"\xff\x7f", b"\x00\x80", b"\x00",
                                     b"\x7f" + b"\xff" * 19])
def test_x509_serial_number_is_the_der_content(content: bytes) -> None:
    with warnings.catch_warnings():   # pyca deprecates non-positive serials (RFC 5280)
        warnings.simplefilter("ignore")
        values = der_attributes(d.der(serial=content))
    (ident,) = [v for n, _, v in values if n == "X.509 Certificate Identifier"]
    assert _field(ident, Tag.CERTIFICATE_SERIAL_NUMBER) == content


def test_hostile_names_are_stored_and_served(kmip: Kmip) -> None:
    """Strings pyca decodes (BMPString, UniversalString beyond the BMP, an OCTET STRING
    CN), multi-valued and repeated RDNs, an empty subject, a v1 certificate, a zero and a
    20-byte serial, and a name of thousands of RDNs near 64 KiB: stored, and each CN
    served as one Certificate Subject CN instance, in order, and found by Locate. (A NUL
    in a name is refused: test_live_certificate_with_control_characters_is_refused.)"""
    many = [[d.atv(d.CN, b"n%04d" % i)] for i in range(3500)]
    cases: list[tuple[bytes, list[str]]] = [
        (d.der(subject=d.name([d.atv(d.CN, "h\u00e9llo".encode("utf-16-be"), 0x1E)])),
         ["h\u00e9llo"]),
        (d.der(subject=d.name([d.atv(d.CN, (0x1F600).to_bytes(4, "big"), 0x1C)])),
         ["\U0001F600"]),
        (d.der(subject=d.name([d.atv(d.ORG, b"o"), d.atv(d.CN, b"m1")], [d.atv(d.CN, b"m2")])),
         ["m1", "m2"]),
        (d.der(subject=d.name([d.atv(d.CN, b"dup")], [d.atv(d.CN, b"dup")])), ["dup", "dup"]),
        (d.der(subject=d.seq()), []),
        (d.der(version=None, serial=b"\x00"), ["leaf"]),
        (d.der(serial=b"\x7f" + b"\xff" * 19), ["leaf"]),
        (d.der(subject=d.name(*many)), [f"n{i:04d}" for i in range(3500)]),
    ]
    for der, cns in cases:
        assert len(der) <= MAX_STORED_BYTES
        with warnings.catch_warnings():   # the zero serial (RFC 5280: positive)
            warnings.simplefilter("ignore")
            uid = _register(kmip, der)
            got = kmip.get(uid).find(int(Tag.CERTIFICATE))
            assert got is not None and _field(got, Tag.CERTIFICATE_VALUE) == der
            attrs = _attributes(kmip, uid)
            assert _values(attrs, "Certificate Subject CN") == cns, cns[:3]
            assert _values(attrs, "Certificate Length") == [len(der)]
            if cns:
                found = _locate(kmip, Certificate_Subject_CN=text(Tag.CERTIFICATE_SUBJECT_CN,
                                                                  cns[-1]))
                assert uid in found


def test_size_boundary_is_exactly_64_kib(kmip: Kmip) -> None:
    padding, exact = MAX_STORED_BYTES - 1000, b""
    for _ in range(20):   # ECDSA signatures vary by a byte or two
        exact = _make_certificate(padding=padding)
        if len(exact) == MAX_STORED_BYTES:
            break
        padding += MAX_STORED_BYTES - len(exact)
    assert len(exact) == MAX_STORED_BYTES
    uid = _register(kmip, exact)
    got = kmip.get(uid).find(int(Tag.CERTIFICATE))
    assert got is not None and _field(got, Tag.CERTIFICATE_VALUE) == exact
    with pytest.raises(KeykeeperError) as over:
        _register(kmip, exact + b"\x00")
    assert reason_of(over.value) == "Invalid_Field"


# -- versions ---------------------------------------------------------------------------------


# Finding 4 (fixed in kmip/ops/locate.py): Locate matched on attributes the request's
# version does not define: a KMIP 2.x Locate by Certificate Identifier (removed in 2.0)
# found the certificate, as did a 1.2 Locate by Certificate Subject CN (1.4 on), while Get
# Attributes in those versions never shows them. An attribute the version does not define
# is Invalid_Field, as an unknown one is (kmip/attributes.py read_attributes).
def test_locate_by_attribute_the_version_does_not_define(node: Node) -> None:  # noqa: F811
    v21, v12 = Kmip(node, (2, 1)), Kmip(node, (1, 2))
    uid = _register(v21, d.der())
    identifier = struct(Tag.CERTIFICATE_IDENTIFIER, text(Tag.ISSUER, "CN=CA"))
    cn = text(Tag.CERTIFICATE_SUBJECT_CN, "leaf")
    for kmip, criterion in ((v21, {"Certificate_Identifier": identifier}),
                            (v12, {"Certificate_Subject_CN": cn})):
        try:
            found = _locate(kmip, **criterion)
        except KeykeeperError as refused:
            assert reason_of(refused) == "Invalid_Field", refused
        else:
            assert uid not in found, (kmip.version, criterion)
    # The versions that define them still find it.
    assert _locate(Kmip(node, (1, 4)), Certificate_Identifier=identifier,
                   Certificate_Subject_CN=cn) == [uid]


_SINCE_1_1 = {"Certificate Length", "Digital Signature Algorithm",
              "X.509 Certificate Identifier", "X.509 Certificate Subject",
              "X.509 Certificate Issuer"}
_ONLY_1_X = {"Certificate Identifier", "Certificate Subject", "Certificate Issuer"}


@pytest.mark.parametrize("version", [(1, 0), (1, 2), (2, 0)])
def test_attributes_follow_the_request_version(node: Node, version: tuple[int, int]) -> None:  # noqa: F811
    """Get Attributes and Get Attribute List show exactly the certificate attributes the
    version defines: 1.0 none of 1.1's X.509 ones, 1.2 no Certificate Subject CN (1.4
    on), 2.0 none of the 1.x text ones."""
    kmip = Kmip(node, version)
    uid = _register(kmip, d.der())
    shown = set(_attributes(kmip, uid))
    listed = kmip(Operation.GET_ATTRIBUTE_LIST, text(Tag.UNIQUE_IDENTIFIER, uid))
    names = ({str(i.value) for i in listed.find_all(int(Tag.ATTRIBUTE_NAME))}
             if version < (2, 0) else
             {Tag(int(i.value)).name for i in listed.find_all(int(Tag.ATTRIBUTE_REFERENCE))
              if isinstance(i.value, int)})
    assert ("Certificate Subject CN" in shown) == (version >= (1, 4))
    assert bool(_SINCE_1_1 & shown) == (version >= (1, 1))
    assert bool(_ONLY_1_X & shown) == (version < (2, 0))
    assert {"Certificate Type", "Digest"} <= shown
    if version < (2, 0):
        assert names == shown
    else:
        assert "CERTIFICATE_SUBJECT_CN" in names and "CERTIFICATE_IDENTIFIER" not in names


# Finding 7 (fixed in kmip/certificate.py): a certificate signed with SHA3-256 with RSA
# (Digital Signature Algorithm 0x11, defined from KMIP 1.4) showed that value to a 1.2
# client: a 1.x Attribute Value is not filtered by the answer's version filter.
def test_signature_algorithm_value_follows_the_request_version(node: Node) -> None:  # noqa: F811
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sha3.example.test")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    der = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(7).not_valid_before(start)
           .not_valid_after(start + datetime.timedelta(days=1))
           .sign(key, hashes.SHA3_256()).public_bytes(serialization.Encoding.DER))
    uid = _register(Kmip(node, (1, 4)), der)
    for version, wanted in (((1, 2), []),
                            ((1, 4), [DigitalSignatureAlgorithm.SHA3_256_WITH_RSA_ENCRYPTION])):
        kmip = Kmip(node, version)
        attrs = _attributes(kmip, uid, "Digital Signature Algorithm")
        assert _values(attrs, "Digital Signature Algorithm") == wanted, version
        listed = kmip(Operation.GET_ATTRIBUTE_LIST, text(Tag.UNIQUE_IDENTIFIER, uid))
        names = {str(i.value) for i in listed.find_all(int(Tag.ATTRIBUTE_NAME))}
        assert ("Digital Signature Algorithm" in names) == bool(wanted)


def test_every_certificate_attribute_is_read_only(kmip: Kmip) -> None:
    """Add, Modify, Delete (and Set in 2.x) of every attribute the server reads from the
    certificate: Attribute_Read_Only (Permission_Denied in 1.x), and the values stay."""
    uid = _register(kmip, d.der())
    before = _attributes(kmip, uid)
    samples = {n: v for n, _, v in reversed(der_attributes(d.der()))}
    samples["Certificate Type"] = before["Certificate Type"][0]
    denied = "Attribute_Read_Only" if kmip.version >= (2, 0) else "Permission_Denied"
    v2 = kmip.version >= (2, 0)
    uid_item = text(Tag.UNIQUE_IDENTIFIER, uid)
    outcomes: dict[str, str] = {}
    for name, value in samples.items():
        new = struct(Tag.NEW_ATTRIBUTE, value) if v2 else struct(
            Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, name),
            Item(int(Tag.ATTRIBUTE_VALUE), value.type, value.value))
        ref = (Item(int(Tag.ATTRIBUTE_REFERENCE), ItemType.ENUMERATION, value.tag) if v2
               else text(Tag.ATTRIBUTE_NAME, name))
        operations = [(Operation.ADD_ATTRIBUTE, new), (Operation.MODIFY_ATTRIBUTE, new),
                      (Operation.DELETE_ATTRIBUTE, ref)]
        if v2:
            operations.append((Operation.SET_ATTRIBUTE, new))
        for operation, item in operations:
            try:
                kmip(operation, uid_item, item)
                outcomes[f"{operation.name} {name}"] = "accepted"
            except KeykeeperError as exc:
                outcomes[f"{operation.name} {name}"] = reason_of(exc)
    assert {k: v for k, v in outcomes.items() if v != denied} == {}
    assert _attributes(kmip, uid) == before


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [(1, 0), (1, 2), (2, 0)])
def test_destroyed_certificate_per_version(node: Node, version: tuple[int, int]) -> None:  # noqa: F811
    """After Revoke (compromise) and Destroy: Get is Object_Destroyed from 2.0 on,
    Wrong_Key_Lifecycle_State before; Get Attributes answers (State Destroyed Compromised,
    the registered Certificate Length where the version has it, nothing read from the
    DER); a Locate by Certificate Type with destroyed storage finds it, one by a DER
    attribute does not."""
    kmip = Kmip(node, version)
    der = d.der()
    uid = _register(kmip, der)
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    kmip.revoke(uid, RevocationReasonCode.KEY_COMPROMISE, 1_700_000_000)
    assert kmip.get(uid).find(int(Tag.CERTIFICATE)) is not None   # still served
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    with pytest.raises(KeykeeperError) as gone:
        kmip.get(uid)
    assert reason_of(gone.value) == ("Object_Destroyed" if version >= (2, 0)
                                     else "Wrong_Key_Lifecycle_State")
    names = ["State", "Certificate Length", "Certificate Identifier"] if version < (2, 0) \
        else ["State", "Certificate Length", "X.509 Certificate Subject"]
    attrs = _attributes(kmip, uid, *names)
    assert _values(attrs, "State") == [State.DESTROYED_COMPROMISED]
    assert _values(attrs, "Certificate Length") == ([len(der)] if version >= (1, 1) else [])
    assert set(attrs) <= {"State", "Certificate Length"}
    kmip(Operation.GET_ATTRIBUTE_LIST, text(Tag.UNIQUE_IDENTIFIER, uid))


# -- the same object over REST; authorization (live server) -------------------------------------


def _rest_import(rest: Any, key_id: str, data: bytes) -> Any:
    """REST import-parameters + import of ``data`` (format raw) into ``key_id``."""
    params = rest.post(f"/v1/keys/{key_id}/import-parameters", json={})
    assert params.status_code == 200, params.text
    p = params.json()
    return rest.post(f"/v1/keys/{key_id}/import", json={
        "import_token": p["import_token"], "format": "raw",
        "wrapped_key_material": base64.b64encode(
            wrap(p["public_key"], data, p["wrapping_algorithm"])).decode()})


# Finding 5 (fixed in kmip/attributes_computed.py and kmip/certificate.py): a certificate
# made over REST (an external X509_CERTIFICATE key, then an import) is a KMIP Certificate
# that KMIP showed as Extractable false, Sensitive true (docs/kmip.md: "a Certificate is
# always Extractable"), and whose Certificate Length a Get Attributes naming it did not
# answer (it is stored by a KMIP Register only), while one asking for everything did.
def test_live_rest_made_certificate_is_public_and_consistent(live) -> None:  # type: ignore[no-untyped-def]
    der = _make_certificate("rest-made.example.test")
    made = live.rest.post("/v1/keys", json={
        "name": "breaker-cert-" + secrets.token_hex(4), "namespace": live.namespace,
        "algorithm": "X509_CERTIFICATE", "origin": "external"})
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]
    garbage = _rest_import(live.rest, key_id, b"not a certificate")
    assert garbage.status_code == 400 and "do not parse" in garbage.text, garbage.text
    imported = _rest_import(live.rest, key_id, der)
    assert imported.status_code == 200, imported.text
    uid = f"{key_id}/1"
    got = live_call(live, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert got.ok and got.payload is not None, got.message
    cert = got.payload.find(int(Tag.CERTIFICATE))
    assert cert is not None and _field(cert, Tag.CERTIFICATE_VALUE) == der

    def named(*tags: int) -> dict[int, list[Any]]:
        refs = [Item(int(Tag.ATTRIBUTE_REFERENCE), ItemType.ENUMERATION, int(t)) for t in tags]
        out = live_call(live, Operation.GET_ATTRIBUTES, text(Tag.UNIQUE_IDENTIFIER, uid), *refs)
        assert out.ok and out.payload is not None, out.message
        attrs = out.payload.find(int(Tag.ATTRIBUTES))
        assert attrs is not None
        found: dict[int, list[Any]] = {}
        for item in attrs.children:
            found.setdefault(item.tag, []).append(item.value)
        return found

    flags = named(Tag.EXTRACTABLE, Tag.SENSITIVE, Tag.NEVER_EXTRACTABLE, Tag.ALWAYS_SENSITIVE)
    assert flags == {Tag.EXTRACTABLE: [True], Tag.SENSITIVE: [False],
                     Tag.NEVER_EXTRACTABLE: [False], Tag.ALWAYS_SENSITIVE: [False]}
    assert named(Tag.CERTIFICATE_LENGTH) == {Tag.CERTIFICATE_LENGTH: [len(der)]}
    assert named(Tag.CERTIFICATE_SUBJECT_CN) == {Tag.CERTIFICATE_SUBJECT_CN:
                                                 ["rest-made.example.test"]}


def test_live_who_reads_a_certificate(live, kmip_pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``key.list`` alone: Locate by the subject's CN finds nothing (no subject data
    leaks), Get and Get Attributes are Permission_Denied; ``key.get`` without
    ``public_key``: the attributes, not the certificate; ``key.get`` and ``public_key``:
    the certificate. In 1.4 and 2.1."""
    cn = f"who-{secrets.token_hex(4)}.example.test"
    registered = live_call(live, Operation.REGISTER,
                           enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE), template(V21),
                           _certificate(_make_certificate(cn)))
    assert registered.ok, registered.message
    uid = uid_of(registered.payload)
    suffix = secrets.token_hex(3)
    expected = {"list": (False, False, False), "get": (False, True, True),
                "both": (True, True, True)}
    grants = {"list": ["key.list"], "get": ["key.get", "key.list"],
              "both": ["key.get", "public_key", "key.list"]}
    for who, operations in grants.items():
        cert = principal_cert(live, kmip_pki, tmp_path, f"cert-{who}-{suffix}", operations,
                              live.namespace)
        for version in (V14, V21):
            u = text(Tag.UNIQUE_IDENTIFIER, uid)
            crit = text(Tag.CERTIFICATE_SUBJECT_CN, cn)
            criterion = [struct(Tag.ATTRIBUTES, crit)] if version >= (2, 0) else [
                v1_attr("Certificate Subject CN", crit)]
            got = one(live, version, Operation.GET, [u], cert)
            attrs = one(live, version, Operation.GET_ATTRIBUTES, [u], cert)
            located = one(live, version, Operation.LOCATE, criterion, cert)
            assert located.ok and located.payload is not None, located.message
            found = uid in [i.value for i in located.payload.children]
            assert (got.ok, attrs.ok, found) == expected[who], (who, version)
            for refused in (r for r in (got, attrs) if not r.ok):
                assert refused.reason == ResultReason.PERMISSION_DENIED, (who, refused.message)
            if attrs.ok:
                assert cn in str(attrs.payload)


# Finding 6 (fixed): a certificate whose subject holds a character XML 1.0 cannot carry
# (NUL, ESC: valid in a DER UTF8String; a NUL-prefix name) was stored, and every Get
# Attributes of it over the XML encoding (POST /kmip, text/xml) was General_Failure. Such
# names are refused where they enter: Register of the certificate, and any text attribute
# value a client gives (a Name with a NUL).
def test_live_certificate_with_control_characters_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    for subject in (b"evil\x00cn", b"esc\x1b[31m", b"www.bank.example\x00.evil.example"):
        der = d.der(subject=d.name([d.atv(d.CN, subject)]))
        registered = live_call(live, Operation.REGISTER,
                               enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE), template(V21),
                               _certificate(der))
        assert not registered.ok and registered.reason == ResultReason.INVALID_FIELD, \
            registered.message
        assert "control characters" in str(registered.message)
    named = live_call(live, Operation.REGISTER,
                      enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE),
                      template(V21, Name=name_value("bad\x00name")),
                      _certificate(d.der(subject=d.name([d.atv(d.CN, b"fine")]))))
    assert not named.ok and named.reason == ResultReason.INVALID_FIELD, named.message
    fine = live_call(live, Operation.REGISTER, enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE),
                     template(V21, Name=name_value("tab\tok-" + secrets.token_hex(4))),
                     _certificate(d.der(subject=d.name([d.atv(d.CN, b"tab\tok")]))))
    assert fine.ok, fine.message
    message = request_message([batch_item(int(Operation.GET_ATTRIBUTES), [
        text(Tag.UNIQUE_IDENTIFIER, uid_of(fine.payload))])], version=V21)
    answer = live.rest.post("/kmip", content=to_xml(message).encode(),
                            headers={"Content-Type": "text/xml"})
    assert answer.status_code == 200, answer.text
    assert "GeneralFailure" not in answer.text and "Success" in answer.text, answer.text
