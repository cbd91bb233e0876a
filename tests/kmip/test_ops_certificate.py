"""X.509 Certificates (kmip/certificate.py): Register, Get, Get Attributes, Get Attribute
List, Locate, read-only attributes, Activate, Revoke, Destroy over KMIP 1.4 and 2.1; bad
input refused; the same object seen over REST (one key store), audited, and served to a
caller whose exports wait for approvals (a certificate is public: ``public_key``).

In-process: the operation handlers against real services over a real store (SQLite and
PostgreSQL, tests/kmip/objects_support.py). Live: the real KMIP listener and the REST API
of the same server (tests/kmip/conftest.py).
"""

from __future__ import annotations

import datetime
import hashlib
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keykeeper.crypto.stored import MAX_STORED_BYTES
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.errors import KeykeeperError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    CertificateType,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    RevocationReasonCode,
    SecretDataType,
    State,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import (
    A,
    Kmip,
    alg,
    enum,
    integer,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    live_call,
    name_value,
    reason_of,
    struct,
    template,
    text,
    uid_of,
)

_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
_SERIAL = 0xE31CB99F91CB07ED   # high bit set: its DER INTEGER has a leading zero byte


def _make_certificate(cn: str = "db.example.test", *, padding: int = 0) -> bytes:
    """A leaf certificate signed by a separate CA name (ECDSA P-256 with SHA-256), with a
    multi-valued subject and a Subject Alternative Name; ``padding`` bytes of an unknown
    non-critical extension make it as large as wanted."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "test"),
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "AU"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "SP"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Lo"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit A"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Unit B"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ops@example.test"),
    ])
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CA Org"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(leaf_key.public_key()).serial_number(_SERIAL)
               .not_valid_before(_START).not_valid_after(_START + datetime.timedelta(days=30))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False))
    if padding:
        builder = builder.add_extension(x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04" * padding), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


_DER = _make_certificate()


def _certificate(der: bytes, kind: int = CertificateType.X_509) -> Item:
    return struct(Tag.CERTIFICATE, enum(Tag.CERTIFICATE_TYPE, kind),
                  Item(int(Tag.CERTIFICATE_VALUE), ItemType.BYTE_STRING, der))


def _register(kmip: Kmip, managed: Item, **attrs: Item) -> str:
    return uid_of(kmip(Operation.REGISTER, enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE),
                       template(kmip.version, **attrs), managed))


def _refused(kmip: Kmip, operation: Operation, *payload: Item) -> str:
    with pytest.raises(KeykeeperError) as caught:
        kmip(operation, *payload)
    return reason_of(caught.value)


def _attributes(kmip: Kmip, uid: str, *names: str) -> dict[str, list[Item]]:
    """A Get Attributes answer as ``{spec name: [values]}`` (2.x: each item by its tag's
    spec name; 1.x: each Attribute's value, by its Attribute Name)."""
    from keykeeper.kmip.ttlv.tags import tag_spec_name

    refs = [Item(int(Tag.ATTRIBUTE_REFERENCE), ItemType.ENUMERATION,
                 int(getattr(Tag, n.upper().replace(".", "_").replace(" ", "_"))))
            if kmip.version >= (2, 0) else text(Tag.ATTRIBUTE_NAME, n) for n in names]
    out = kmip(Operation.GET_ATTRIBUTES, text(Tag.UNIQUE_IDENTIFIER, uid), *refs)
    found: dict[str, list[Item]] = {}
    if kmip.version >= (2, 0):
        attributes = out.find(int(Tag.ATTRIBUTES))
        assert attributes is not None
        for item in attributes.children:
            found.setdefault(str(tag_spec_name(item.tag)), []).append(item)
        return found
    for attribute in out.find_all(int(Tag.ATTRIBUTE)):
        name, value = attribute.find(int(Tag.ATTRIBUTE_NAME)), attribute.find(
            int(Tag.ATTRIBUTE_VALUE))
        assert name is not None and value is not None
        found.setdefault(str(name.value), []).append(value)
    return found


def _locate(kmip: Kmip, **attrs: Item) -> list[str]:
    out = kmip(Operation.LOCATE, *template(kmip.version, **attrs).children) \
        if kmip.version < (2, 0) else kmip(Operation.LOCATE, template(kmip.version, **attrs))
    return [str(i.value) for i in out.find_all(int(Tag.UNIQUE_IDENTIFIER))]


def _field(item: Item, tag: int) -> Any:
    got = item.find(int(tag))
    assert got is not None, f"no {Tag(tag).name} in {item}"
    return got.value


def test_certificate_register_get_and_attributes(kmip: Kmip) -> None:
    uid = _register(kmip, _certificate(_DER),
                    Certificate_Type=enum(Tag.CERTIFICATE_TYPE, CertificateType.X_509),
                    Name=name_value("db-cert"))
    key = kmip.key(uid)
    assert uid == f"{key.id}/1"
    assert (key.algorithm, str(key.purpose), key.origin) == ("X509_CERTIFICATE", "store",
                                                             "external")
    assert key.state == KeyState.PRE_ACTIVE and key.name == "db-cert"
    assert key.exportable   # public: always Extractable, whatever the server's default

    got = kmip.get(uid)
    assert _field(got, Tag.OBJECT_TYPE) == ObjectType.CERTIFICATE
    assert _field(got, Tag.UNIQUE_IDENTIFIER) == uid
    cert = got.find(int(Tag.CERTIFICATE))
    assert cert is not None and cert.find(int(Tag.KEY_BLOCK)) is None
    assert _field(cert, Tag.CERTIFICATE_TYPE) == CertificateType.X_509
    assert _field(cert, Tag.CERTIFICATE_VALUE) == _DER   # byte for byte
    for extra in ([enum(Tag.KEY_FORMAT_TYPE, KeyFormatType.RAW)],
                  [struct(Tag.KEY_WRAPPING_SPECIFICATION)]):
        assert _refused(kmip, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, uid),
                        *extra) == "Invalid_Field"

    parsed = x509.load_der_x509_certificate(_DER)
    attrs = _attributes(kmip, uid)
    assert [v.value for v in attrs["Object Type"]] == [ObjectType.CERTIFICATE]
    assert [v.value for v in attrs["Certificate Type"]] == [CertificateType.X_509]
    assert [v.value for v in attrs["Certificate Length"]] == [len(_DER)]
    (digest,) = attrs["Digest"]
    assert _field(digest, Tag.HASHING_ALGORITHM) == HashingAlgorithm.SHA_256
    assert _field(digest, Tag.DIGEST_VALUE) == hashlib.sha256(_DER).digest()
    assert [v.value for v in attrs["Digital Signature Algorithm"]] == [
        DigitalSignatureAlgorithm.ECDSA_WITH_SHA256]
    assert "Cryptographic Algorithm" not in attrs and "Key Format Type" not in attrs
    assert "Cryptographic Length" not in attrs and "Cryptographic Usage Mask" not in attrs
    # The subject and issuer, field by field (KMIP 1.4 and 2.1 tag tables).
    assert [v.value for v in attrs["Certificate Subject CN"]] == ["db.example.test"]
    assert [v.value for v in attrs["Certificate Subject OU"]] == ["Unit A", "Unit B"]
    assert [v.value for v in attrs["Certificate Subject DC"]] == ["test", "example"]
    assert [v.value for v in attrs["Certificate Subject Email"]] == ["ops@example.test"]
    assert [v.value for v in attrs["Certificate Subject C"]] == ["AU"]
    assert [v.value for v in attrs["Certificate Subject ST"]] == ["SP"]
    assert [v.value for v in attrs["Certificate Subject L"]] == ["Lo"]
    assert [v.value for v in attrs["Certificate Issuer CN"]] == ["Test CA"]
    assert [v.value for v in attrs["Certificate Issuer O"]] == ["Test CA Org"]
    assert "Certificate Issuer OU" not in attrs
    # X.509 Certificate Identifier / Subject / Issuer: DER values.
    (ident,) = attrs["X.509 Certificate Identifier"]
    assert _field(ident, Tag.ISSUER_DISTINGUISHED_NAME) == parsed.issuer.public_bytes()
    assert _field(ident, Tag.CERTIFICATE_SERIAL_NUMBER) == b"\x00" + _SERIAL.to_bytes(8, "big")
    (subject,) = attrs["X.509 Certificate Subject"]
    assert _field(subject, Tag.SUBJECT_DISTINGUISHED_NAME) == parsed.subject.public_bytes()
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert _field(subject, Tag.SUBJECT_ALTERNATIVE_NAME) == san.public_bytes()
    (issuer,) = attrs["X.509 Certificate Issuer"]
    assert _field(issuer, Tag.ISSUER_DISTINGUISHED_NAME) == parsed.issuer.public_bytes()
    assert issuer.find(int(Tag.ISSUER_ALTERNATIVE_NAME)) is None
    # KMIP 1.0's text attributes: in 1.x only (KMIP 2.0 removed them).
    if kmip.version >= (2, 0):
        assert not {"Certificate Identifier", "Certificate Subject",
                    "Certificate Issuer"} & set(attrs)
    else:
        (old_id,) = attrs["Certificate Identifier"]
        assert _field(old_id, Tag.ISSUER) == parsed.issuer.rfc4514_string()
        assert _field(old_id, Tag.SERIAL_NUMBER) == "E31CB99F91CB07ED"
        (old_subject,) = attrs["Certificate Subject"]
        assert _field(old_subject, Tag.CERTIFICATE_SUBJECT_DISTINGUISHED_NAME) == \
            parsed.subject.rfc4514_string()
        assert _field(old_subject, Tag.CERTIFICATE_SUBJECT_ALTERNATIVE_NAME) == \
            "db.example.test"

    named = _attributes(kmip, uid, "Certificate Subject CN", "Certificate Length")
    assert {n: [v.value for v in vs] for n, vs in named.items()} == {
        "Certificate Subject CN": ["db.example.test"], "Certificate Length": [len(_DER)]}
    listed = kmip(Operation.GET_ATTRIBUTE_LIST, text(Tag.UNIQUE_IDENTIFIER, uid))
    names = {int(i.value) for i in listed.find_all(int(Tag.ATTRIBUTE_REFERENCE))
             if isinstance(i.value, int)} if kmip.version >= (2, 0) else {
        str(i.value) for i in listed.find_all(int(Tag.ATTRIBUTE_NAME))}
    wanted = ({int(Tag.CERTIFICATE_TYPE), int(Tag.CERTIFICATE_LENGTH),
               int(Tag.CERTIFICATE_SUBJECT_CN), int(Tag.X_509_CERTIFICATE_SUBJECT),
               int(Tag.DIGEST)} if kmip.version >= (2, 0) else
              {"Certificate Type", "Certificate Length", "Certificate Subject CN",
               "X.509 Certificate Subject", "Certificate Subject", "Digest"})
    assert wanted <= names


def test_certificate_attributes_are_read_only(kmip: Kmip) -> None:
    uid = _register(kmip, _certificate(_DER))
    denied = "Attribute_Read_Only" if kmip.version >= (2, 0) else "Permission_Denied"
    v2 = kmip.version >= (2, 0)

    def attribute(name: str, value: Item) -> Item:
        return struct(Tag.NEW_ATTRIBUTE, value) if v2 else struct(
            Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, name),
            Item(int(Tag.ATTRIBUTE_VALUE), value.type, value.value))

    uid_item = text(Tag.UNIQUE_IDENTIFIER, uid)
    length = integer(Tag.CERTIFICATE_LENGTH, 123)
    cn = text(Tag.CERTIFICATE_SUBJECT_CN, "evil")
    ctype = enum(Tag.CERTIFICATE_TYPE, CertificateType.PGP)
    for operation, name, value in ((Operation.MODIFY_ATTRIBUTE, "Certificate Length", length),
                                   (Operation.ADD_ATTRIBUTE, "Certificate Subject CN", cn),
                                   (Operation.MODIFY_ATTRIBUTE, "Certificate Type", ctype)):
        assert _refused(kmip, operation, uid_item, attribute(name, value)) == denied, name
    delete = (Item(int(Tag.ATTRIBUTE_REFERENCE), ItemType.ENUMERATION, int(Tag.DIGEST))
              if v2 else text(Tag.ATTRIBUTE_NAME, "Digest"))
    assert _refused(kmip, Operation.DELETE_ATTRIBUTE, uid_item, delete) == denied
    if v2:
        assert _refused(kmip, Operation.SET_ATTRIBUTE, uid_item,
                        attribute("Certificate Length", length)) == denied
    attrs = _attributes(kmip, uid, "Certificate Length", "Certificate Subject CN",
                        "Certificate Type", "Digest")
    assert [v.value for v in attrs["Certificate Length"]] == [len(_DER)]
    assert [v.value for v in attrs["Certificate Subject CN"]] == ["db.example.test"]
    assert [v.value for v in attrs["Certificate Type"]] == [CertificateType.X_509]
    assert len(attrs["Digest"]) == 1


def test_certificate_locate_lifecycle_and_no_crypto(kmip: Kmip) -> None:
    uid = _register(kmip, _certificate(_DER))
    other = _register(kmip, _certificate(_make_certificate("web.example.test")))
    aes = kmip.create_aes(256)
    certs = _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE))
    assert sorted(certs) == sorted([uid, other])
    assert aes not in certs
    assert sorted(_locate(kmip, Certificate_Type=enum(Tag.CERTIFICATE_TYPE,
                                                      CertificateType.X_509))) == sorted(certs)
    assert _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE),
                   Certificate_Subject_CN=text(Tag.CERTIFICATE_SUBJECT_CN,
                                               "web.example.test")) == [other]
    assert _locate(kmip, Certificate_Subject_CN=text(Tag.CERTIFICATE_SUBJECT_CN,
                                                     "nobody.example.test")) == []
    assert uid not in _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE,
                                                    ObjectType.SYMMETRIC_KEY))

    # Never used as a key: no cryptographic operation, no Re-Key.
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert kmip.key(uid).state == KeyState.ACTIVE
    assert _refused(kmip, Operation.ENCRYPT, text(Tag.UNIQUE_IDENTIFIER, uid),
                    Item(int(Tag.DATA), ItemType.BYTE_STRING, b"m")) \
        == "Incompatible_Cryptographic_Usage_Mask"
    assert _refused(kmip, Operation.SIGN, text(Tag.UNIQUE_IDENTIFIER, uid),
                    Item(int(Tag.DATA), ItemType.BYTE_STRING, b"m")) \
        == "Incompatible_Cryptographic_Usage_Mask"
    assert _refused(kmip, Operation.RE_KEY, text(Tag.UNIQUE_IDENTIFIER, uid)) in (
        "Invalid_Field", "Invalid_Object_Type")

    # Revoke, Destroy (crypto-erasure), as any object.
    assert _refused(kmip, Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))  # active
    kmip.revoke(uid, RevocationReasonCode.CESSATION_OF_OPERATION)
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    gone = kmip.key(uid)
    assert gone.versions[0].state == VersionState.DESTROYED
    assert _refused(kmip, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, uid)) in (
        "Object_Destroyed", "Wrong_Key_Lifecycle_State")
    attrs = _attributes(kmip, uid)
    assert [v.value for v in attrs["State"]] == [State.DESTROYED]
    # Stored at Register, so they outlive the DER (as a key's Digest does).
    assert [v.value for v in attrs["Certificate Length"]] == [len(_DER)]
    assert "Digest" in attrs and "Certificate Subject CN" not in attrs
    assert _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE)) == [other]
    # A pre-active certificate is destroyed at once.
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, other))
    assert kmip.key(other).versions[0].state == VersionState.DESTROYED


def test_certificate_refusals(kmip: Kmip) -> None:
    register = (Operation.REGISTER, enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE))
    pem = x509.load_der_x509_certificate(_DER).public_bytes(serialization.Encoding.PEM)
    for bad in (b"\x30\x03\x02\x01\x01", b"not a certificate", _DER[:-1], _DER + b"\x00",
                pem):
        with pytest.raises(KeykeeperError) as garbage:
            _register(kmip, _certificate(bad))
        assert reason_of(garbage.value) == "Invalid_Field"
        assert "do not parse" in str(garbage.value.detail)
    for data in (b"", _DER + b"\x00" * MAX_STORED_BYTES,
                 _make_certificate(padding=MAX_STORED_BYTES)):   # this one parses
        with pytest.raises(KeykeeperError) as size:
            _register(kmip, _certificate(data))
        assert reason_of(size.value) == "Invalid_Field"
        assert f"1 to {MAX_STORED_BYTES} bytes" in str(size.value.detail)
    with pytest.raises(KeykeeperError) as pgp:
        _register(kmip, _certificate(_DER, CertificateType.PGP))
    assert reason_of(pgp.value) == "Invalid_Field" and "X.509 only" in str(pgp.value.detail)
    assert _refused(kmip, *register, template(kmip.version), struct(
        Tag.CERTIFICATE, Item(int(Tag.CERTIFICATE_VALUE), ItemType.BYTE_STRING, _DER))) \
        == "Invalid_Field"   # no Certificate Type
    assert _refused(kmip, *register, template(kmip.version), struct(
        Tag.CERTIFICATE, enum(Tag.CERTIFICATE_TYPE, CertificateType.X_509),
        text(Tag.CERTIFICATE_VALUE, "3082"))) == "Invalid_Field"   # not a Byte String
    assert _refused(kmip, *register, template(kmip.version)) == "Invalid_Field"  # no object
    for attrs in ({"Cryptographic_Algorithm": alg(A.RSA)},
                  {"Certificate_Length": integer(Tag.CERTIFICATE_LENGTH, 12)},
                  {"Certificate_Subject_CN": text(Tag.CERTIFICATE_SUBJECT_CN, "x")},
                  {"Certificate_Type": enum(Tag.CERTIFICATE_TYPE, CertificateType.PGP)},
                  {"Extractable": Item(int(Tag.EXTRACTABLE), ItemType.BOOLEAN, False)},
                  {"Sensitive": Item(int(Tag.SENSITIVE), ItemType.BOOLEAN, True)}):
        with pytest.raises(KeykeeperError) as refused:
            _register(kmip, _certificate(_DER), **attrs)
        assert reason_of(refused.value) == "Invalid_Field", attrs
    # Create does not make certificates; nothing was stored by any refusal.
    assert _refused(kmip, Operation.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE),
                    template(kmip.version)) == "Invalid_Field"
    assert _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE)) == []


# -- one store: KMIP and REST over the same server ----------------------------------------------


def test_live_certificate_is_public_and_a_key_over_rest(kmip_server) -> None:  # type: ignore[no-untyped-def]
    """With an approval policy that puts exports under dual control, a certificate's Get
    is served (``public_key``), a Secret Data's is not (``key.export`` would wait for
    approvals)."""
    before = kmip_server.rest.get("/v1/policies/approval")
    assert before.status_code == 200, before.text
    put = kmip_server.rest.put("/v1/policies/approval",
                               json={"rules": [{"operations": ["key.export"]}]})
    assert put.status_code == 200, put.text
    try:
        _live_certificate(kmip_server)
    finally:
        kmip_server.rest.put("/v1/policies/approval", json=before.json())


def _live_certificate(kmip_server) -> None:  # type: ignore[no-untyped-def]
    der = _make_certificate("live.example.test")
    registered = live_call(kmip_server, Operation.REGISTER,
                           enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE),
                           template((2, 1), Name=name_value("live-cert-1")), _certificate(der))
    assert registered.ok, registered.message
    uid = uid_of(registered.payload)
    key_id = uid.split("/")[0]
    got = live_call(kmip_server, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert got.ok, got.message
    cert = got.payload.find(int(Tag.CERTIFICATE))
    assert cert is not None and _field(cert, Tag.CERTIFICATE_VALUE) == der

    secret = live_call(kmip_server, Operation.REGISTER,
                       enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA), template((2, 1)),
                       struct(Tag.SECRET_DATA, enum(Tag.SECRET_DATA_TYPE,
                                                    SecretDataType.PASSWORD),
                              struct(Tag.KEY_BLOCK, enum(Tag.KEY_FORMAT_TYPE,
                                                         KeyFormatType.OPAQUE),
                                     struct(Tag.KEY_VALUE, Item(int(Tag.KEY_MATERIAL),
                                                                ItemType.BYTE_STRING,
                                                                b"pw-pw-pw")))))
    assert secret.ok, secret.message
    secret_get = live_call(kmip_server, Operation.GET,
                           text(Tag.UNIQUE_IDENTIFIER, uid_of(secret.payload)))
    assert not secret_get.ok and secret_get.reason == ResultReason.PERMISSION_DENIED

    seen = kmip_server.rest.get(f"/v1/keys/{key_id}")
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["purpose"], body["algorithm"], body["origin"], body["name"]) == (
        "store", "X509_CERTIFICATE", "external", "live-cert-1")
    assert body["namespace"] == kmip_server.namespace   # the listener's KMIP namespace
    enc = kmip_server.rest.post(f"/v1/keys/{key_id}/encrypt", json={"plaintext": "eA=="})
    assert enc.status_code == 409 and "purpose 'store'" in enc.text, enc.text
    made = kmip_server.rest.post("/v1/keys", json={
        "name": "rest-cert-1", "namespace": kmip_server.namespace,
        "algorithm": "X509_CERTIFICATE"})
    assert made.status_code == 400 and "does not generate" in made.text, made.text

    for operation in ("kmip.register", "kmip.get"):   # audited as any key operation
        records: list[dict[str, Any]] = []
        for _ in range(50):
            r = kmip_server.rest.get("/v1/audit", params={"operation": operation})
            assert r.status_code == 200, r.text
            records = [rec for rec in r.json()["records"] if rec.get("key_id") == key_id]
            if records:
                break
            time.sleep(0.1)
        assert records, operation
        assert der.hex() not in str(records)
