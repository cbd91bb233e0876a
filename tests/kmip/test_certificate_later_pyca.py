"""A stored certificate the installed pyca/cryptography no longer parses (kmip/certificate.py
module docstring; crypto/stored.py ``CertificateHandle``): still gettable byte for byte, its
DER attributes left out of Get Attributes (Certificate Length and Digest still answered),
and Locate neither fails nor matches it on a DER attribute.

"A later pyca" is simulated with the real library: a certificate with serial number zero,
which pyca 4x-50 accepts with a CryptographyDeprecationWarning ("will cause an exception in
a future release"), is registered; then that warning is made an error, as the future
release (or ``python -W error``) makes it, and the handle cache is emptied (a restart)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator

import pytest
from cryptography.utils import CryptographyDeprecationWarning

from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import ObjectType, Operation
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import node  # noqa: F401  (the fixture)
from tests.kmip import certificate_der as d
from tests.kmip.objects_support import (
    Kmip,
    enum,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    text,
)
from tests.kmip.test_certificate_breaker import _register
from tests.kmip.test_ops_certificate import _attributes, _locate

_DER = d.der(serial=b"\x00", subject=d.name([d.atv(d.CN, b"later-pyca")]))
_DER_ONLY = ("Certificate Subject CN", "Certificate Identifier",
             "X.509 Certificate Identifier", "X.509 Certificate Subject",
             "Digital Signature Algorithm")


@pytest.fixture
def later_pyca() -> Iterator[None]:
    """pyca's warning about this certificate raised as an error while the test runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        yield


def _registered(kmip: Kmip) -> str:
    with warnings.catch_warnings():   # today's pyca: accepted, with a warning
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        uid = _register(kmip, _DER)
        attrs = _attributes(kmip, uid)
    assert [v.value for v in attrs["Certificate Subject CN"]] == ["later-pyca"]
    kmip.node.services.deps.custody.drop_key(uid.split("/")[0])   # as after a restart
    return uid


def test_get_serves_the_stored_bytes(kmip: Kmip, later_pyca: None) -> None:
    uid = _registered(kmip)
    got = kmip.get(uid).find(int(Tag.CERTIFICATE))
    assert got is not None
    value = got.find(int(Tag.CERTIFICATE_VALUE))
    assert value is not None and value.value == _DER


def test_der_attributes_are_left_out(kmip: Kmip, later_pyca: None,
                                     caplog: pytest.LogCaptureFixture) -> None:
    uid = _registered(kmip)
    attrs = _attributes(kmip, uid)
    assert [v.value for v in attrs["Object Type"]] == [ObjectType.CERTIFICATE]
    assert [v.value for v in attrs["Certificate Length"]] == [len(_DER)]
    (digest,) = attrs["Digest"]
    value = digest.find(int(Tag.DIGEST_VALUE))
    assert value is not None and value.value == hashlib.sha256(_DER).digest()
    assert not set(_DER_ONLY) & set(attrs), sorted(attrs)
    assert uid.split("/")[0] in caplog.text and "no longer parses" in caplog.text
    # named one by one: left out, not an error
    asked = _attributes(kmip, uid, "Certificate Subject CN", "Certificate Length")
    assert "Certificate Subject CN" not in asked and "Certificate Length" in asked
    listed = kmip(Operation.GET_ATTRIBUTE_LIST, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert isinstance(listed, Item)


def test_locate_does_not_fail_or_match_on_der_attributes(kmip: Kmip, later_pyca: None) -> None:
    uid = _registered(kmip)
    assert uid in _locate(kmip, Object_Type=enum(Tag.OBJECT_TYPE, ObjectType.CERTIFICATE))
    assert _locate(kmip, Certificate_Subject_CN=text(Tag.CERTIFICATE_SUBJECT_CN,
                                                     "later-pyca")) == []
