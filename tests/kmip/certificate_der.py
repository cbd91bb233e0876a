"""Raw DER X.509 certificates for the certificate breaker tests
(test_certificate_breaker.py): a few TLV helpers, so that a certificate can hold what
pyca's builder refuses (x400Address names, duplicate extensions, odd serials and
strings). Test vectors only: the signature is not valid (the server does not check it)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["CN", "KEY_USAGE", "ORG", "SAN", "atv", "der", "ext", "name", "oid", "seq", "tlv"]


def tlv(tag: int, content: bytes) -> bytes:
    """One DER TLV: ``tag`` (one byte), the definite length, ``content``."""
    n = len(content)
    size = bytes([n]) if n < 128 else (
        bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8,
                                                                 "big"))
    return bytes([tag]) + size + content


def seq(*parts: bytes) -> bytes:
    """A SEQUENCE of the encoded ``parts``."""
    return tlv(0x30, b"".join(parts))


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, out)


def atv(kind: str, value: bytes, string_tag: int = 0x0C) -> bytes:
    """An AttributeTypeAndValue: type ``kind`` (dotted), ``value`` under ``string_tag``
    (UTF8String by default; 0x1E BMPString, 0x1C UniversalString, ...)."""
    return seq(oid(kind), tlv(string_tag, value))


def name(*rdns: list[bytes]) -> bytes:
    """A Name of one RDN (a SET, given DER-sorted) per list of ``atv`` values."""
    return seq(*(tlv(0x31, b"".join(rdn)) for rdn in rdns))


def ext(kind: str, value: bytes) -> bytes:
    """A non-critical Extension ``kind`` (dotted) whose extnValue holds ``value``."""
    return seq(oid(kind), tlv(0x04, value))


CN, ORG, SAN, KEY_USAGE = "2.5.4.3", "2.5.4.10", "2.5.29.17", "2.5.29.15"
_SPKI = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
_ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"))


def der(*, serial: bytes = b"\x05", subject: bytes | None = None,
         extensions: list[bytes] | None = None, version: int | None = 2) -> bytes:
    """A certificate (signature not valid: the server does not check it) with serial
    content octets ``serial``, a subject (default CN=leaf), issuer CN=CA."""
    tbs = [] if version is None else [tlv(0xA0, tlv(0x02, bytes([version])))]
    tbs += [tlv(0x02, serial), _ECDSA_SHA256, name([atv(CN, b"CA")]),
            seq(tlv(0x17, b"260101000000Z"), tlv(0x17, b"270101000000Z")),
            name([atv(CN, b"leaf")]) if subject is None else subject, _SPKI]
    if extensions is not None:
        tbs.append(tlv(0xA3, seq(*extensions)))
    return seq(seq(*tbs), _ECDSA_SHA256, tlv(0x03, b"\x00\x30\x06\x02\x01\x01\x02\x01\x01"))
