"""Certificates (KMIP 1.4 §2.2.1, KMIP 2.1 §2.2.1): X.509 certificates over keykeeper's key
store, as stored data (kmip/stored_data.py).

A Certificate is a key of purpose ``store`` and algorithm ``X509_CERTIFICATE``, origin
``external``, one version whose material is the certificate's DER (1 B to 64 KiB, parsed
by pyca/cryptography on Register, crypto/stored.py ``check_certificate``), wrapped under
the namespace KEK like any stored data. A certificate is public: a Get needs
``public_key`` (as a public key's does), never ``key.export``, and it is always
Extractable. Certificate Type PGP is not stored.

The certificate attributes are the server's, read from the DER and never written by a
client (attributes_catalogue.py: not modifiable by client; Attribute_Read_Only):

==================================  ==============  ==============================================
attribute                           versions        value
==================================  ==============  ==============================================
Certificate Type                    all             X.509 (attributes_computed.py)
Certificate Length                  1.1 and later   bytes of the DER (stored at Register)
Digest                              all             SHA-256 of the DER (stored at Register)
Digital Signature Algorithm         1.1 and later   the certificate's signature algorithm, when KMIP
                                                    names it
Certificate Identifier,             1.0 to 1.4      Issuer (RFC 4514 text) and Serial Number
Certificate Subject, Certificate    (deprecated     (upper-case hex); the subject's and issuer's
Issuer                              in 1.1)         RFC 4514 DN and alternative names (text)
X.509 Certificate Identifier,       1.1 and later   the issuer's DER Name and the serial's DER
X.509 Certificate Subject,                          INTEGER content; the DER Names and the DER of
X.509 Certificate Issuer                            the Subject / Issuer Alternative Name extension
Certificate Subject CN ... DN       as the tag      one instance per RDN value of that type, in the
Qualifier, Certificate Issuer ...   tables define   certificate's order
                                    them (1.4 on)
==================================  ==============  ==============================================

Certificate Length and Digest are stored with the key when it is registered, so that they
outlive a Destroy (as a key's Digest does); the others are read from the DER
(:func:`certificate_values`, authorized as ``key.get``) while the object has it.

The DER is parsed in full once, on Register (or a REST import); a stored certificate is
loaded with an integrity check only and served as stored (crypto/stored.py
``CertificateHandle``), and parsed lazily, once per loaded handle, when an attribute is
read from it (Get Attributes, Get Attribute List, a Locate naming one of them). Should
the installed pyca/cryptography no longer parse a stored certificate (a later release
refusing what it accepted at Register, such as the non-positive serial numbers it
already warns about), the object is still served: Get returns its bytes; the attributes
read from the DER are *omitted* (KMIP 2.1 §6.1.23: Get Attributes answers the
attributes the object has, with no error for one it lacks), Certificate Length and
Digest, which need the bytes only, are still answered, and a Locate naming a DER
attribute does not match it. A warning is logged with the object's identifier.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from keykeeper.crypto.registry import get_spec
from keykeeper.crypto.stored import CERTIFICATE_ALGORITHM, check_certificate
from keykeeper.domain.keys import Key
from keykeeper.errors import InvalidArgument, KeykeeperError
from keykeeper.kmip.attributes import defined_in
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.keyblock import bytes_of
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import CertificateType, DigitalSignatureAlgorithm, HashingAlgorithm
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import ObjectId

__all__ = [
    "CERTIFICATE_ALGORITHM",
    "DER_ATTRIBUTES",
    "UNREADABLE",
    "certificate_values",
    "der_attributes",
    "encode_certificate",
    "is_certificate",
    "parse_certificate",
    "registered_attributes",
    "wants_der",
]


Values = list[tuple[str, int, Item]]

UNREADABLE: tuple[type[Exception], ...] = (
    ValueError, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
    Warning)
"""What pyca raises for a certificate (or its extensions) it cannot read (only the first
is a ValueError), and its deprecation warnings when they are errors (``-W error``)."""

log = logging.getLogger("keykeeper.kmip")

# Certificate Subject / Issuer <suffix> (KMIP 2.1 §4): the RDN type each one holds.
_RDN: tuple[tuple[str, x509.ObjectIdentifier], ...] = (
    ("CN", NameOID.COMMON_NAME), ("O", NameOID.ORGANIZATION_NAME),
    ("OU", NameOID.ORGANIZATIONAL_UNIT_NAME), ("Email", NameOID.EMAIL_ADDRESS),
    ("C", NameOID.COUNTRY_NAME), ("ST", NameOID.STATE_OR_PROVINCE_NAME),
    ("L", NameOID.LOCALITY_NAME), ("UID", NameOID.USER_ID),
    ("Serial Number", NameOID.SERIAL_NUMBER), ("Title", NameOID.TITLE),
    ("DC", NameOID.DOMAIN_COMPONENT), ("DN Qualifier", NameOID.DN_QUALIFIER),
)

_D = DigitalSignatureAlgorithm
_S = SignatureAlgorithmOID
_SIGNATURES = {
    _S.RSA_WITH_MD5: _D.MD5_WITH_RSA_ENCRYPTION, _S.RSA_WITH_SHA1: _D.SHA_1_WITH_RSA_ENCRYPTION,
    _S.RSA_WITH_SHA224: _D.SHA_224_WITH_RSA_ENCRYPTION,
    _S.RSA_WITH_SHA256: _D.SHA_256_WITH_RSA_ENCRYPTION,
    _S.RSA_WITH_SHA384: _D.SHA_384_WITH_RSA_ENCRYPTION,
    _S.RSA_WITH_SHA512: _D.SHA_512_WITH_RSA_ENCRYPTION, _S.RSASSA_PSS: _D.RSASSA_PSS,
    _S.RSA_WITH_SHA3_256: _D.SHA3_256_WITH_RSA_ENCRYPTION,
    _S.RSA_WITH_SHA3_384: _D.SHA3_384_WITH_RSA_ENCRYPTION,
    _S.RSA_WITH_SHA3_512: _D.SHA3_512_WITH_RSA_ENCRYPTION,
    _S.DSA_WITH_SHA1: _D.DSA_WITH_SHA_1, _S.DSA_WITH_SHA224: _D.DSA_WITH_SHA224,
    _S.DSA_WITH_SHA256: _D.DSA_WITH_SHA256, _S.ECDSA_WITH_SHA1: _D.ECDSA_WITH_SHA_1,
    _S.ECDSA_WITH_SHA224: _D.ECDSA_WITH_SHA224, _S.ECDSA_WITH_SHA256: _D.ECDSA_WITH_SHA256,
    _S.ECDSA_WITH_SHA384: _D.ECDSA_WITH_SHA384, _S.ECDSA_WITH_SHA512: _D.ECDSA_WITH_SHA512,
}

_SUBJECT_ISSUER = tuple(f"Certificate {side} {suffix}" for side in ("Subject", "Issuer")
                        for suffix, _ in _RDN)
DER_ATTRIBUTES = frozenset({
    "Digital Signature Algorithm", "Certificate Identifier", "Certificate Subject",
    "Certificate Issuer", "X.509 Certificate Identifier", "X.509 Certificate Subject",
    "X.509 Certificate Issuer", *_SUBJECT_ISSUER})
"""The attributes read from a certificate's DER when asked for (the module's table)."""
_REGISTERED = frozenset({"Certificate Length", "Digest"})


def parse_certificate(managed: Item) -> bytes:
    """The DER of the Certificate structure of a Register (Certificate Type, Certificate
    Value). Invalid_Field for a missing or mistyped field, a Certificate Type other than
    X.509 (PGP is not stored), or a value that is not one DER X.509 certificate of 1 B to
    64 KiB (crypto/stored.py ``check_certificate``)."""
    kind = managed.find(int(Tag.CERTIFICATE_TYPE))
    if kind is None or kind.type is not ItemType.ENUMERATION:
        raise KmipError("Invalid_Field", "the Certificate has no Certificate Type")
    if kind.value != CertificateType.X_509:
        raise KmipError("Invalid_Field", "Certificate Type X.509 only: keykeeper does not "
                        "store PGP or other certificates")
    der = bytes_of(managed.find(int(Tag.CERTIFICATE_VALUE)), "Certificate Value")
    try:
        return check_certificate(get_spec(CERTIFICATE_ALGORITHM), der)
    except InvalidArgument as exc:
        raise KmipError("Invalid_Field", f"Certificate Value: {exc}") from None


def encode_certificate(der: bytes) -> Item:
    """The Certificate structure of a Get answer: Certificate Type X.509, Certificate Value
    (the DER as registered, byte for byte)."""
    return Item.structure(int(Tag.CERTIFICATE), [
        Item(int(Tag.CERTIFICATE_TYPE), ItemType.ENUMERATION, int(CertificateType.X_509)),
        Item(int(Tag.CERTIFICATE_VALUE), ItemType.BYTE_STRING, der)])


def _digest(der: bytes) -> Item:
    """Digest of a certificate (KMIP 2.1 §4.12): SHA-256 of its DER; no Key Format Type,
    which the Digest carries for keys only."""
    return Item.structure(int(Tag.DIGEST), [
        Item(int(Tag.HASHING_ALGORITHM), ItemType.ENUMERATION, int(HashingAlgorithm.SHA_256)),
        Item(int(Tag.DIGEST_VALUE), ItemType.BYTE_STRING, hashlib.sha256(der).digest())])


def registered_attributes(der: bytes) -> dict[str, list[Item]]:
    """The attributes a Register stores with the certificate: Certificate Length and
    Digest (the module docstring says why)."""
    return {"Certificate Length": [Item(int(Tag.CERTIFICATE_LENGTH), ItemType.INTEGER,
                                        len(der))],
            "Digest": [_digest(der)]}


def _text(tag: int, value: str) -> Item:
    return Item(int(tag), ItemType.TEXT_STRING, value)


def _raw(tag: int, value: bytes) -> Item:
    return Item(int(tag), ItemType.BYTE_STRING, value)


def _general_names(cert: x509.Certificate, oid: x509.ObjectIdentifier
                   ) -> tuple[bytes | None, list[str]]:
    """(DER of the alternative name extension's value or None, each name as text)."""
    try:
        ext = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None, []
    except UNREADABLE:   # refused on Register (crypto/stored.py); a later pyca may differ
        return None, []
    if not isinstance(ext, (x509.SubjectAlternativeName, x509.IssuerAlternativeName)):
        return None, []
    return ext.public_bytes(), [_name_text(n) for n in ext]


def _name_text(name: x509.GeneralName) -> str:
    """A general name as text: a DNS name, e-mail address, URI or IP address as it is, a
    directory name in RFC 4514, a registered ID dotted, another name's value in hex."""
    value = name.value
    if isinstance(value, x509.Name):
        return value.rfc4514_string()
    if isinstance(value, x509.ObjectIdentifier):
        return value.dotted_string
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _serial_bytes(serial: int) -> bytes:
    """The content octets of the DER INTEGER (two's complement, minimal: -128 is 0x80)."""
    return serial.to_bytes((serial if serial >= 0 else ~serial).bit_length() // 8 + 1, "big",
                           signed=True)


def der_attributes(der: bytes, cert: x509.Certificate | None = None) -> Values:
    """Every attribute of the module's table read from ``der``, ``(name, index, value)``
    (the version filter is the caller's); ``cert`` is ``der`` already parsed, when the
    caller has it (crypto/stored.py ``CertificateHandle.certificate``). One of
    :data:`UNREADABLE` for a value that does not parse (a registered one did parse with
    the pyca of its Register)."""
    if cert is None:
        cert = x509.load_der_x509_certificate(der)
    out: Values = [(name, 0, item) for name, items in registered_attributes(der).items()
                   for item in items]
    algorithm = _SIGNATURES.get(cert.signature_algorithm_oid)
    if algorithm is not None:
        out.append(("Digital Signature Algorithm", 0,
                    Item(int(Tag.DIGITAL_SIGNATURE_ALGORITHM), ItemType.ENUMERATION,
                         int(algorithm))))
    serial = cert.serial_number
    out.append(("Certificate Identifier", 0, Item.structure(int(Tag.CERTIFICATE_IDENTIFIER), [
        _text(Tag.ISSUER, cert.issuer.rfc4514_string()),
        _text(Tag.SERIAL_NUMBER, f"{serial:X}" if serial >= 0 else f"-{-serial:X}")])))
    out.append(("X.509 Certificate Identifier", 0, Item.structure(
        int(Tag.X_509_CERTIFICATE_IDENTIFIER), [
            _raw(Tag.ISSUER_DISTINGUISHED_NAME, cert.issuer.public_bytes()),
            _raw(Tag.CERTIFICATE_SERIAL_NUMBER, _serial_bytes(serial))])))
    sides = (("Subject", cert.subject, ExtensionOID.SUBJECT_ALTERNATIVE_NAME),
             ("Issuer", cert.issuer, ExtensionOID.ISSUER_ALTERNATIVE_NAME))
    for side, name, oid in sides:
        upper = side.upper()
        alt_der, alt_texts = _general_names(cert, oid)
        old = [_text(getattr(Tag, f"CERTIFICATE_{upper}_DISTINGUISHED_NAME"),
                     name.rfc4514_string())]
        old += [_text(getattr(Tag, f"CERTIFICATE_{upper}_ALTERNATIVE_NAME"), t)
                for t in alt_texts]
        out.append((f"Certificate {side}", 0,
                    Item.structure(int(getattr(Tag, f"CERTIFICATE_{upper}")), old)))
        x509_fields = [_raw(getattr(Tag, f"{upper}_DISTINGUISHED_NAME"), name.public_bytes())]
        if alt_der is not None:
            x509_fields.append(_raw(getattr(Tag, f"{upper}_ALTERNATIVE_NAME"), alt_der))
        out.append((f"X.509 Certificate {side}", 0,
                    Item.structure(int(getattr(Tag, f"X_509_CERTIFICATE_{upper}")),
                                   x509_fields)))
        for suffix, rdn in _RDN:
            tag = getattr(Tag, "CERTIFICATE_" + upper + "_"
                          + suffix.upper().replace(" ", "_"), None)
            if tag is None:  # not in the generated tag table
                continue
            values = [a.value for a in name.get_attributes_for_oid(rdn)
                      if isinstance(a.value, str)]
            out.extend((f"Certificate {side} {suffix}", i, _text(tag, v))
                       for i, v in enumerate(values))
    return out


def is_certificate(key: Key) -> bool:
    """Whether ``key`` holds a KMIP Certificate."""
    return key.algorithm == CERTIFICATE_ALGORITHM


def certificate_values(call: Call, key: Key, oid: ObjectId, values: Values, *,
                       strict: bool = True) -> Values:
    """``values`` (attributes.py ``merged_values`` of object ``oid``) with the attributes
    read from the certificate's DER that it lacks (but an enumeration value the request's
    version does not define); ``values`` itself for another object or
    a certificate whose DER is gone (destroyed). The DER is read through the service
    (KmipAttributeStore.certificate_handle, authorized as ``key.get``; parsed once per
    loaded handle). ``strict`` False (Locate over the keys a caller may list): a caller
    that may not read it gets ``values``. A DER the installed pyca no longer parses:
    ``values`` with Certificate Length and Digest only (module docstring), never an
    error."""
    if not is_certificate(key):
        return values
    store = call.services.kmip_attributes
    assert store is not None
    try:
        handle = store.certificate_handle(call.ctx, key, oid.version)
    except KeykeeperError:
        if strict:
            raise
        return values
    if handle is None:
        return values
    # A value the request's version does not define (SHA3-256 with RSA before 1.4): left
    # out, as object_values leaves out the others.
    read = defined_in(_readable_attributes(handle.der, handle.certificate(), oid.key_id),
                      call.version)
    have = {name for name, _, _ in values}
    return values + [v for v in read if v[0] not in have]


def _readable_attributes(der: bytes, cert: x509.Certificate | None, key_id: str) -> Values:
    """:func:`der_attributes` of ``der`` (``cert`` parsed, or None when pyca refused it);
    Certificate Length and Digest only, with a warning logged, when it does not parse
    (parsed on Register: the installed pyca reads it otherwise; module docstring)."""
    why = "pyca refuses it"
    if cert is not None:
        try:
            return der_attributes(der, cert)
        except UNREADABLE as exc:
            why = type(exc).__name__
    log.warning("certificate %s no longer parses (%s): the attributes read from its DER "
                "are left out", key_id, why)
    return [(name, 0, item) for name, items in registered_attributes(der).items()
            for item in items]


def wants_der(names: Iterable[str]) -> bool:
    """Whether any of ``names`` (spec names) is read from a certificate's DER: those only
    read from it, and Certificate Length and Digest (stored by a Register, but a
    certificate made over REST has them from its DER only)."""
    return any(name in DER_ATTRIBUTES or name in _REGISTERED for name in names)
