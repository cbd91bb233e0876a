"""Stored data (purpose ``store``): KMIP Secret Data, Opaque Objects and X.509
Certificates kept as bytes.

Such an object is not a key: keykeeper keeps its bytes wrapped under the namespace KEK
exactly as it keeps key material (one key store, issue 5 §3), serves them back to a
caller allowed to export them, and runs no cryptographic operation with them: every
operation of :class:`StoredDataHandle` raises FailedPrecondition, and the service layer
refuses them earlier with its wrong-purpose error. They are registered, never generated.
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
    otherwise (the message never holds the bytes)."""
    value = check_stored_data(spec, data)
    try:
        cert = x509.load_der_x509_certificate(value)
        # The subject and issuer are what the KMIP attributes are read from: parse them now
        # so that a certificate accepted here never fails later.
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        _ = cert.serial_number
    except (ValueError, x509.InvalidVersion):
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


class CertificateHandle(StoredDataHandle):
    """The DER of an X.509 certificate (``X509_CERTIFICATE``, KMIP Certificate); checked
    by :func:`check_certificate` when loaded. No operation (FailedPrecondition), as any
    stored data."""

    __slots__ = ()

    def __init__(self, spec: AlgorithmSpec, material: bytes) -> None:
        super().__init__(spec, check_certificate(spec, material))
