"""Client-certificate (mTLS) authentication: a certificate to a principal.

The TLS layer (REST with client certificates, KMIP) verifies the chain against the
configured CA; this maps the verified certificate to a principal. A certificate's
*identities* are its subject DN in RFC 4514 form (``CN=app,O=Example``) and each
subjectAltName as ``DNS:name`` (lower-cased), ``URI:uri``, ``email:address`` or
``IP:address``; a principal lists the identities it answers to in
``certificate_subjects`` (stored canonically, service/identity_rules.py).

The answer is :class:`~keykeeper.errors.Unauthenticated` (one message for every case)
when the DER cannot be read, the certificate is outside its validity period, no enabled
principal matches, or identities of one certificate match two principals. Answers are
cached for ``cache_ttl`` seconds (1 s), as token answers are.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging

from cryptography import x509

from keykeeper.authz.model import Principal
from keykeeper.custody.cache import TTLCache
from keykeeper.errors import Unauthenticated
from keykeeper.service.deps import Deps

__all__ = ["CertificateAuthenticator", "certificate_identities"]

_FAILED = "certificate does not map to an enabled principal"
log = logging.getLogger("keykeeper.auth")


def certificate_identities(cert: x509.Certificate) -> set[str]:
    """The subject DN and every supported subjectAltName, in canonical form."""
    out: set[str] = set()
    if len(cert.subject):
        out.add(cert.subject.rfc4514_string())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return out
    out.update("DNS:" + v.lower().rstrip(".") for v in san.get_values_for_type(x509.DNSName))
    out.update("URI:" + v for v in san.get_values_for_type(x509.UniformResourceIdentifier))
    out.update("email:" + v for v in san.get_values_for_type(x509.RFC822Name))
    out.update("IP:" + str(ipaddress.ip_address(v))
               for v in san.get_values_for_type(x509.IPAddress)
               if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address))
    return out


class CertificateAuthenticator:
    def __init__(self, deps: Deps, cache_ttl: float = 1.0) -> None:
        self._d = deps
        self._cache: TTLCache[str, Principal] = TTLCache(10_000, cache_ttl)

    def cached(self, cert_der: bytes) -> Principal | None:
        """The principal when the cache knows the certificate (no I/O: safe on the event
        loop); None when :meth:`authenticate` must read the store."""
        if not isinstance(cert_der, bytes) or not cert_der or len(cert_der) > 64 * 1024:
            return None
        return self._cache.get(hashlib.sha256(cert_der).hexdigest())

    def authenticate(self, cert_der: bytes) -> Principal:
        """The principal of a (chain-verified) DER certificate; Unauthenticated if none."""
        if not isinstance(cert_der, bytes) or not cert_der or len(cert_der) > 64 * 1024:
            raise Unauthenticated(_FAILED)
        digest = hashlib.sha256(cert_der).hexdigest()
        found = self._cache.get(digest)
        if found is not None:
            return found
        try:
            cert = x509.load_der_x509_certificate(cert_der)
            identities = certificate_identities(cert)
        except ValueError:
            raise Unauthenticated(_FAILED) from None
        # One message whatever the cause (expired, unmapped, disabled), naming the
        # certificate's subject, which its holder knows and the operator needs to map it.
        refused = Unauthenticated(f"{_FAILED} (subject {_subject(cert)})")
        now = self._d.clock()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise refused
        with self._d.reading() as conn:
            matches = [p for p in self._d.identity.list_principals(conn)
                       if identities.intersection(p.certificate_subjects)]
        if len(matches) != 1 or matches[0].disabled:
            log.info("a client certificate was refused: subject %s", _subject(cert))
            raise refused
        self._cache.put(digest, matches[0])
        return matches[0]

    def forget(self) -> None:
        self._cache.clear()


def _subject(cert: x509.Certificate) -> str:
    """The subject as an RFC 4514 string, ASCII only (non-ASCII escaped), at most 200
    characters: safe in a KMIP Result Message and a log line."""
    text = cert.subject.rfc4514_string().encode("ascii", "backslashreplace").decode()
    return text if len(text) <= 200 else text[:197] + "..."
