"""Stored data (purpose store, crypto/stored.py): bytes kept and given back, never
generated, no operation."""

from __future__ import annotations

import datetime
import pickle
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from keykeeper.crypto import Purpose, generate_material, get_spec, load_private
from keykeeper.crypto.keyio import check_import_format, import_private_material
from keykeeper.crypto.stored import MAX_STORED_BYTES, CertificateHandle
from keykeeper.crypto.wrap import exportable_material
from keykeeper.errors import FailedPrecondition, InvalidArgument

from .test_handles import PRIVATE_OPS

STORED = ["SECRET_DATA", "OPAQUE_DATA"]


@pytest.mark.parametrize("name", STORED)
def test_spec_is_stored_data(name: str) -> None:
    spec = get_spec(name)
    assert spec.purpose == Purpose.STORE
    assert (spec.key_bits, spec.security_strength, spec.asymmetric) == (0, 0, False)
    assert not spec.quantum_safe and not spec.legacy


@pytest.mark.parametrize("name", STORED)
def test_bytes_round_trip_and_no_operation(name: str) -> None:
    spec = get_spec(name)
    for data in (b"\x00", b"password", b"\xff" * MAX_STORED_BYTES):
        handle = load_private(spec, data)
        assert exportable_material(handle) == (data, "raw")
    handle = load_private(spec, b"s3cret")
    assert "s3cret" not in repr(handle) and repr(handle) == f"<KeyHandle {name}>"
    with pytest.raises(TypeError):
        pickle.dumps(handle)
    for op in PRIVATE_OPS.values():
        with pytest.raises(FailedPrecondition, match="does not support"):
            op(handle)


@pytest.mark.parametrize("name", STORED)
def test_size_limits_and_no_generation(name: str) -> None:
    spec = get_spec(name)
    for data in (b"", b"x" * (MAX_STORED_BYTES + 1)):
        with pytest.raises(InvalidArgument, match=f"1 to {MAX_STORED_BYTES} bytes"):
            load_private(spec, data)
    with pytest.raises(InvalidArgument, match="does not generate"):
        generate_material(spec)
    assert check_import_format(spec, "raw") == "raw"
    assert import_private_material(spec, "raw", b"abc") == b"abc"
    with pytest.raises(InvalidArgument):
        check_import_format(spec, "pkcs8")


def _certificate_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stored test")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_certificate_holds_one_der_certificate() -> None:
    spec = get_spec("X509_CERTIFICATE")
    assert spec.purpose == Purpose.STORE and spec.key_bits == 0 and not spec.asymmetric
    der = _certificate_der()
    handle = load_private(spec, der)
    assert isinstance(handle, CertificateHandle)
    assert exportable_material(handle) == (der, "raw")
    for op in PRIVATE_OPS.values():
        with pytest.raises(FailedPrecondition, match="does not support"):
            op(handle)
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    for bad in (b"\x30\x03\x02\x01\x01", der[:-1], der + b"\x00", pem, b"x"):
        with pytest.raises(InvalidArgument, match="do not parse") as caught:
            import_private_material(spec, "raw", bad)   # Register / import: parsed in full
        assert bad.hex() not in str(caught.value)
    for bad in (der[:-1], der + b"\x00", pem, b"x", b"\x30\x81\x03abc", b"\x31\x00"):
        with pytest.raises(InvalidArgument, match="not one DER SEQUENCE"):
            load_private(spec, bad)   # loading a stored one: integrity only
    with pytest.raises(InvalidArgument, match=f"1 to {MAX_STORED_BYTES} bytes"):
        load_private(spec, der + b"\x00" * MAX_STORED_BYTES)
    with pytest.raises(InvalidArgument, match="does not generate"):
        generate_material(spec)


def test_stored_certificate_loads_without_parsing_and_parses_once() -> None:
    """A stored certificate is loaded on integrity alone, so one a later pyca refuses
    stays servable; its parsed form is read lazily, once per handle."""
    spec = get_spec("X509_CERTIFICATE")
    not_a_certificate = b"\x30\x03\x02\x01\x01"   # one DER SEQUENCE of its length
    handle = load_private(spec, not_a_certificate)
    assert isinstance(handle, CertificateHandle)
    assert handle.der == not_a_certificate and handle.certificate() is None
    der = _certificate_der()
    handle = load_private(spec, der)
    assert isinstance(handle, CertificateHandle)
    parsed = handle.certificate()
    assert parsed is not None and parsed.serial_number == 7
    assert handle.certificate() is parsed   # cached on the handle


def test_certificate_pyca_would_refuse_is_loaded_and_served() -> None:
    """Serial number zero: accepted by today's pyca with a warning that a future release
    refuses it. With that warning an error (that release), Register refuses it
    (InvalidArgument, not a crash), but a stored one loads and gives its bytes back."""
    spec = get_spec("X509_CERTIFICATE")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zero serial")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1).not_valid_before(start)
               .not_valid_after(start + datetime.timedelta(days=1)))
    der = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    serial_one = bytes.fromhex("020101")
    assert der.count(serial_one) == 1
    der = der.replace(serial_one, bytes.fromhex("020100"))   # signature left invalid
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        with pytest.raises(InvalidArgument, match="do not parse"):
            import_private_material(spec, "raw", der)
        handle = load_private(spec, der)
        assert isinstance(handle, CertificateHandle)
        assert exportable_material(handle) == (der, "raw")
        assert handle.certificate() is None
