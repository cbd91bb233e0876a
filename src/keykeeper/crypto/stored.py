"""Stored data (purpose ``store``): KMIP Secret Data, Opaque Objects and X.509
Certificates kept as bytes.

Such an object is not a key: keykeeper keeps its bytes wrapped under the namespace KEK
exactly as it keeps key material (one key store, issue 5 §3), serves them back to a
caller allowed to export them, and runs no cryptographic operation with them: every
operation of :class:`StoredDataHandle` raises FailedPrecondition, and the service layer
refuses them earlier with its wrong-purpose error. They are registered, never generated.

A certificate is validated in full once, when it is registered or imported
(:func:`check_certificate`, called by KMIP Register and by ``crypto/keyio.py``
``import_private_material``). Loading a stored one (:class:`CertificateHandle`) checks
its integrity only (:func:`check_stored_certificate`), so that a certificate accepted
then stays gettable if a later pyca/cryptography parses more strictly (it already warns
that it will refuse non-positive serial numbers); its parsed form is read lazily and
cached on the handle (:meth:`CertificateHandle.certificate`).
"""

from __future__ import annotations

import re
from typing import Final, NoReturn

from cryptography import x509

from keykeeper.crypto.base import KeyHandle, require_bytes
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import InvalidArgument

__all__ = [
    "CERTIFICATE_ALGORITHM",
    "MAX_STORED_BYTES",
    "CertificateHandle",
    "StoredDataHandle",
    "check_certificate",
    "check_stored_certificate",
    "check_stored_data",
    "refuse_generation",
]

MAX_STORED_BYTES: Final = 65536
"""The largest stored object, in bytes (64 KiB)."""

CERTIFICATE_ALGORITHM: Final = "X509_CERTIFICATE"
"""The algorithm of a stored X.509 certificate (a KMIP Certificate; crypto/registry.py)."""


def check_stored_data(spec: AlgorithmSpec, data: object) -> bytes:
    """``data`` as bytes when it may be stored as ``spec`` (1 to :data:`MAX_STORED_BYTES`
    bytes); InvalidArgument otherwise (the message gives the size, never the bytes)."""
    value = require_bytes("stored data", data)
    if not 1 <= len(value) <= MAX_STORED_BYTES:
        raise InvalidArgument(f"{spec.name} holds 1 to {MAX_STORED_BYTES} bytes, not "
                              f"{len(value)}")
    return value


def refuse_generation(spec: AlgorithmSpec) -> NoReturn:
    """Stored data comes from its owner (KMIP Register, or an import): InvalidArgument."""
    raise InvalidArgument(f"{spec.name} objects hold data a client registers (KMIP "
                          "Register or an import of format 'raw'); keykeeper does not "
                          "generate them")


class StoredDataHandle(KeyHandle):
    """The bytes of a Secret Data or Opaque Object; no operation (FailedPrecondition).
    ``crypto/wrap.py`` ``exportable_material`` gives them back as ``(bytes, "raw")``."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, material: bytes) -> None:
        super().__init__(spec)
        self._key = check_stored_data(spec, material)


def check_certificate(spec: AlgorithmSpec, data: object) -> bytes:
    """``data`` as bytes when it is one DER-encoded X.509 certificate (RFC 5280) of 1 to
    :data:`MAX_STORED_BYTES` bytes, parsed by pyca/cryptography
    (``x509.load_der_x509_certificate``; trailing bytes refused). Neither its validity
    period nor its signature is checked: a KMIP server stores certificates, it does not
    validate them. Its extensions must parse too (pyca reads them lazily; the alternative
    names are KMIP attributes): not a duplicate (RFC 5280 §4.2), an x400Address or
    ediPartyName, or a known extension whose value does not parse. InvalidArgument
    otherwise (the message never holds the bytes), also when pyca's warning about the
    certificate (a non-positive serial) is turned into an error (``-W error``). Run on
    Register and import only; a stored certificate is loaded by
    :func:`check_stored_certificate`."""
    value = check_stored_data(spec, data)
    try:
        cert = x509.load_der_x509_certificate(value)
        # The subject and issuer are what the KMIP attributes are read from: parse them now
        # so that a certificate accepted here never fails later.
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        _ = cert.serial_number
    except (ValueError, x509.InvalidVersion, Warning):
        raise InvalidArgument(f"{spec.name} holds one DER-encoded X.509 certificate; the "
                              f"{len(value)} bytes given do not parse as one") from None
    try:
        extensions = cert.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise InvalidArgument(f"{spec.name}: the certificate's extensions do not parse "
                              f"({str(exc)[:120]})") from None
    if _has_control_characters(cert, extensions):
        raise InvalidArgument(f"{spec.name}: the certificate's subject, issuer or "
                              "alternative names hold control characters (a NUL-prefix "
                              "name, say); such names cannot be matched or shown safely")
    return value


# Characters XML 1.0 cannot carry (C0 controls but TAB, LF, CR; U+FFFE, U+FFFF): a name
# holding one could not be answered over KMIP's XML encoding, and a NUL in a name is the
# classic NUL-prefix certificate attack.
CONTROL_CHARACTERS: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _has_control_characters(cert: x509.Certificate, extensions: x509.Extensions) -> bool:
    texts = [a.value for name in (cert.subject, cert.issuer) for a in name
             if isinstance(a.value, str)]
    for ext in extensions:
        if isinstance(ext.value, (x509.SubjectAlternativeName, x509.IssuerAlternativeName)):
            texts += [g.value for g in ext.value if isinstance(g.value, str)]
    return any(CONTROL_CHARACTERS.search(t) for t in texts)


def check_stored_certificate(spec: AlgorithmSpec, data: object) -> bytes:
    """``data`` as bytes when it may be a stored certificate: 1 to
    :data:`MAX_STORED_BYTES` bytes holding exactly one DER SEQUENCE (ITU-T X.690 §8.9,
    definite length, tag 0x30) whose length is the stored length. Integrity only: the
    certificate was parsed when it was registered (:func:`check_certificate`), and is not
    parsed again here. InvalidArgument otherwise (the message gives the size only)."""
    value = check_stored_data(spec, data)
    if not _is_one_der_sequence(value):
        raise InvalidArgument(f"{spec.name}: the {len(value)} bytes stored are not one DER "
                              "SEQUENCE of that length")
    return value


def _is_one_der_sequence(data: bytes) -> bool:
    """Whether ``data`` is a SEQUENCE tag, a minimal definite length and that many bytes."""
    if len(data) < 2 or data[0] != 0x30:
        return False
    first = data[1]
    if first < 0x80:
        return 2 + first == len(data)
    size = first & 0x7F
    if not 1 <= size <= 3 or len(data) < 2 + size or data[2] == 0:
        return False
    length = int.from_bytes(data[2:2 + size], "big")
    return length >= 0x80 and 2 + size + length == len(data)


_UNPARSED: Final = object()


class CertificateHandle(StoredDataHandle):
    """The DER of an X.509 certificate (``X509_CERTIFICATE``, KMIP Certificate). Loading
    checks integrity only (:func:`check_stored_certificate`): the DER was parsed in full
    when it was registered or imported (:func:`check_certificate`), and it is served as
    stored (``crypto/wrap.py`` ``exportable_material``, :attr:`der`) even if the pyca
    of the day would no longer parse it. :meth:`certificate` parses it when something is
    read from it, once per handle. No operation (FailedPrecondition), as any stored
    data."""

    __slots__ = ("_parsed",)

    def __init__(self, spec: AlgorithmSpec, material: bytes) -> None:
        super().__init__(spec, check_stored_certificate(spec, material))
        self._parsed: object = _UNPARSED

    @property
    def der(self) -> bytes:
        """The certificate's DER, byte for byte as registered (a certificate is public)."""
        return self._key

    def certificate(self) -> x509.Certificate | None:
        """The certificate parsed by pyca/cryptography, or None when the installed pyca
        refuses it (ValueError, InvalidVersion, or its warning raised as an error): the
        outcome is cached on the handle, so one handle parses at most once (a benign race
        between threads parses twice). pyca reads extensions lazily: reading them may
        still raise (kmip/certificate.py ``UNREADABLE``)."""
        parsed = self._parsed
        if parsed is _UNPARSED:
            try:
                parsed = x509.load_der_x509_certificate(self._key)
            except (ValueError, x509.InvalidVersion, Warning):
                parsed = None
            self._parsed = parsed
        return parsed if isinstance(parsed, x509.Certificate) else None
