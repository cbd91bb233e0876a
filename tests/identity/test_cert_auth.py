"""Client-certificate authentication with real X.509 certificates (pyca/cryptography):
mapping by subject DN and by each subjectAltName kind, and every refusal."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keykeeper.errors import InvalidArgument, Unauthenticated
from keykeeper.service.identity_rules import canonical_subject
from tests.identity.conftest import root, unique
from tests.integration.conftest import Node

_KEY = ec.generate_private_key(ec.SECP256R1())


def cert(common_name: str, *, org: str = "Example", sans: list[x509.GeneralName] | None = None,
         not_before: datetime | None = None, days: int = 90) -> bytes:
    """A DER certificate signed by a throwaway CA key."""
    start = not_before or datetime(2025, 12, 1)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
               .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + timedelta(days=days)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_canonical_subjects() -> None:
    assert canonical_subject("CN=app, O=Example") == "CN=app,O=Example"
    assert canonical_subject("cn=app,o=Example,c=DE") == "CN=app,O=Example,C=DE"
    assert canonical_subject(" dns:App.Example. ") == "DNS:app.example"
    assert canonical_subject("ip:10.0.0.07".replace("07", "7")) == "IP:10.0.0.7"
    assert canonical_subject("IP:2001:DB8::1") == "IP:2001:db8::1"
    assert canonical_subject("email:ops@example.com") == "email:ops@example.com"
    assert canonical_subject("URI:spiffe://corp/app") == "URI:spiffe://corp/app"
    for bad in ("", "hello", "CN", "DNS:", "email:nobody", "URI:a b", "x" * 2000):
        with pytest.raises(InvalidArgument):
            canonical_subject(bad)


def test_subject_dn_maps_to_principal(node: Node) -> None:
    name = unique("dn")
    p = node.services.identity.principals.create(
        root(node), name=name, certificate_subjects=[f"CN={name}, O=Example"])
    got = node.services.auth.authenticate_certificate(cert(name))
    assert got.name == p.name
    with pytest.raises(Unauthenticated):
        node.services.auth.authenticate_certificate(cert(name, org="Elsewhere"))


@pytest.mark.parametrize("kind", ["dns", "uri", "email", "ip4", "ip6"])
def test_each_san_kind_maps(node: Node, kind: str) -> None:
    name = unique("san")
    san, subject = {
        "dns": (x509.DNSName(f"{name}.Example.com"), f"DNS:{name}.example.com"),
        "uri": (x509.UniformResourceIdentifier(f"spiffe://corp/{name}"),
                f"URI:spiffe://corp/{name}"),
        "email": (x509.RFC822Name(f"{name}@example.com"), f"email:{name}@example.com"),
        "ip4": (x509.IPAddress(ipaddress.ip_address("192.0.2.44")), "IP:192.0.2.44"),
        "ip6": (x509.IPAddress(ipaddress.ip_address("2001:db8::44")), "IP:2001:DB8::44"),
    }[kind]
    node.services.identity.principals.create(root(node), name=name,
                                             certificate_subjects=[subject])
    der = cert("unmapped-" + name, sans=[x509.DNSName("other.example"), san])
    assert node.services.auth.authenticate_certificate(der).name == name
    node.services.identity.principals.delete(root(node), name)
    node.services.auth.forget()
    with pytest.raises(Unauthenticated):
        node.services.auth.authenticate_certificate(der)


def test_refusals(node: Node) -> None:
    auth = node.services.auth
    a, b = unique("a"), unique("b")
    ident = node.services.identity.principals
    ident.create(root(node), name=a, certificate_subjects=[f"CN={a},O=Example"])
    ident.create(root(node), name=b, certificate_subjects=[f"DNS:{b}.example"])
    # One certificate naming two principals is refused, not guessed.
    with pytest.raises(Unauthenticated):
        auth.authenticate_certificate(cert(a, sans=[x509.DNSName(f"{b}.example")]))
    # Outside its validity period (the node's clock is 2026-01-01).
    for start in (datetime(2026, 6, 1), datetime(2024, 1, 1)):
        with pytest.raises(Unauthenticated):
            auth.authenticate_certificate(cert(a, not_before=start))
    for junk in (b"", b"not a certificate", b"\x30\x03\x02\x01\x01", b"x" * 70_000):
        with pytest.raises(Unauthenticated):
            auth.authenticate_certificate(junk)
    assert auth.authenticate_certificate(cert(a)).name == a
    ident.disable(root(node), a)
    with pytest.raises(Unauthenticated):
        auth.authenticate_certificate(cert(a))
