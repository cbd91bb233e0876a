"""X.509 for ``keykeeper dev-certs``: a local CA and the server and client certificates it
issues, with pyca/cryptography. Development only (docs/tls.md).

The certificates pass OpenSSL's X.509 strict checks, which the server applies to client
certificates: the CA has critical basic constraints (``CA:TRUE, pathlen:0``) and key usage
(``keyCertSign, cRLSign``); every certificate has a subject key identifier, and the
leaves an authority key identifier, critical ``CA:FALSE`` and a critical key usage.
The server certificate names its hosts as subjectAltNames (DNS names and IP addresses)
with the ``serverAuth`` extended key usage; the client certificate is ``CN=<name>`` with
``clientAuth``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "KeyType", "issue_ca", "issue_client", "issue_server", "key_pem",
           "parse_hosts"]

KeyType = Literal["ec", "rsa"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
CLOCK_SKEW = timedelta(minutes=5)  # not_before is backdated by this much
_DNS = re.compile(r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                  r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: PrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM (the file that holds it must be mode 0600)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def parse_hosts(text: str) -> list[x509.GeneralName]:
    """``"localhost,127.0.0.1"`` to subjectAltNames: an IP address where one parses,
    else a DNS name (letters, digits, hyphens, dots; a leading ``*.`` allowed). Raises
    ValueError naming the bad entry, or when the list is empty."""
    names: list[x509.GeneralName] = []
    for raw in text.split(","):
        host = raw.strip()
        if not host:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
            continue
        except ValueError:
            pass
        if len(host) > 253 or not _DNS.match(host):
            raise ValueError(f"not a DNS name or IP address: {host!r}")
        names.append(x509.DNSName(host.lower()))
    if not names:
        raise ValueError("no host given")
    return names


def _new_key(kind: KeyType) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return ec.generate_private_key(ec.SECP256R1())


def _builder(subject: x509.Name, issuer: x509.Name, key: PrivateKey, days: int,
             now: datetime | None) -> x509.CertificateBuilder:
    start = (now or datetime.now(UTC)) - CLOCK_SKEW
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + CLOCK_SKEW + timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False))


def issue_ca(common_name: str, *, days: int, kind: KeyType = "ec",
             now: datetime | None = None) -> Issued:
    """A self-signed CA that may issue leaf certificates only (path length 0)."""
    key = _new_key(kind)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keykeeper development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_builder(name, name, key, days, now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def _leaf(ca: Issued, subject: x509.Name, usage: x509.ObjectIdentifier, *, days: int,
          kind: KeyType, now: datetime | None,
          sans: Sequence[x509.GeneralName] = ()) -> Issued:
    key = _new_key(kind)
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    builder = (_builder(subject, ca.certificate.subject, key, days, now)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                   ca_ski.value), critical=False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False,
                   key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                   data_encipherment=False, key_agreement=False, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)),
                                        critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def issue_server(ca: Issued, hosts: Sequence[x509.GeneralName], *, days: int,
                 kind: KeyType = "ec", now: datetime | None = None) -> Issued:
    """A TLS server certificate for ``hosts`` (subjectAltNames; the first is the CN)."""
    first = hosts[0].value
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first))])
    return _leaf(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, days=days, kind=kind, now=now,
                 sans=hosts)


def issue_client(ca: Issued, common_name: str, *, days: int, kind: KeyType = "ec",
                 now: datetime | None = None) -> Issued:
    """A TLS client certificate ``CN=<common_name>`` (1 to 64 characters)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return _leaf(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, days=days, kind=kind, now=now)
