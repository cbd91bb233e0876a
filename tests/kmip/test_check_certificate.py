"""Check (kmip/ops/check.py; KMIP 1.4 §4.10, 2.1 §6.1.7) answers from the object's
attributes as Get Attributes reports them: a Certificate's Cryptographic Usage Mask and
Usage Limits (none read from its DER: the DER gives Certificate Type, Length, Digest,
Digital Signature Algorithm, subject and issuer, none a Check field), and every object's
Lease Time (the server's, KEYKEEPER_KMIP_LEASE_TIME: a longer lease is refused).

In-process over a real node (SQLite and PostgreSQL), as KMIP 1.4 and 2.1 requests.
"""

from __future__ import annotations

from dataclasses import replace

from keykeeper.errors import KeykeeperError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, State
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import (
    Kmip,
    U,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    mask,
    reason_of,
    text,
    uid_of,
)
from tests.kmip.test_ops_certificate import _DER, _attributes, _certificate, _register


def _check(kmip: Kmip, uid: str, *fields: Item) -> str:
    """"ok" (the Unique Identifier answered), or the Result Reason of the refusal."""
    try:
        out = kmip(Operation.CHECK, text(Tag.UNIQUE_IDENTIFIER, uid), *fields)
    except KeykeeperError as refused:
        return reason_of(refused)
    assert uid_of(out) == uid
    return "ok"


def _count(n: int) -> Item:
    return Item(int(Tag.USAGE_LIMITS_COUNT), ItemType.LONG_INTEGER, n)


def _lease(seconds: int) -> Item:
    return Item(int(Tag.LEASE_TIME), ItemType.INTERVAL, seconds)


def test_check_of_a_certificate_answers_as_its_attributes(kmip: Kmip) -> None:
    plain = _register(kmip, _certificate(_DER))
    verify = _register(kmip, _certificate(_DER), Cryptographic_Usage_Mask=mask(int(U.VERIFY)))
    seen = {uid: _attributes(kmip, uid) for uid in (plain, verify)}
    for attrs in seen.values():   # the DER's attributes are reported ...
        assert {"Certificate Type", "Certificate Length", "Digest",
                "Digital Signature Algorithm"} <= set(attrs)
        assert "Usage Limits" not in attrs   # ... and no Check field among them
    assert "Cryptographic Usage Mask" not in seen[plain]
    assert [v.value for v in seen[verify]["Cryptographic Usage Mask"]] == [int(U.VERIFY)]

    # Pre-Active: no use yet; a mask the object lacks is refused first.
    assert _check(kmip, verify, mask(int(U.VERIFY))) == "Wrong_Key_Lifecycle_State"
    for uid in (plain, verify):
        kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
        assert [v.value for v in _attributes(kmip, uid)["State"]] == [State.ACTIVE]
    # No Cryptographic Usage Mask reported: no use allowed.
    for use in (U.VERIFY, U.ENCRYPT, U.SIGN):
        assert _check(kmip, plain, mask(int(use))) == "Incompatible_Cryptographic_Usage_Mask"
    # Verify reported: Verify allowed, nothing else.
    assert _check(kmip, verify, mask(int(U.VERIFY))) == "ok"
    for use in (U.ENCRYPT, U.SIGN, U.VERIFY | U.ENCRYPT):
        assert _check(kmip, verify, mask(int(use))) == "Incompatible_Cryptographic_Usage_Mask"
    # No Usage Limits reported: any count of uses.
    for uid in (plain, verify):
        assert _check(kmip, uid, _count(2 ** 40)) == "ok"
        assert _check(kmip, uid, _count(-1)) == "Permission_Denied"


def test_check_refuses_a_lease_longer_than_the_lease_time(kmip: Kmip) -> None:
    certificate = _register(kmip, _certificate(_DER))
    key = kmip.create_aes(256)
    granted = kmip.settings.lease_time
    assert granted > 0
    for uid in (certificate, key):
        assert [v.value for v in _attributes(kmip, uid)["Lease Time"]] == [granted]
        assert _check(kmip, uid, _lease(granted)) == "ok"
        assert _check(kmip, uid, _lease(1)) == "ok"
        assert _check(kmip, uid, _lease(granted + 1)) == "Permission_Denied"
        assert _check(kmip, uid, _lease(10 ** 6)) == "Permission_Denied"


def test_check_takes_any_lease_without_a_lease_time(kmip: Kmip) -> None:
    kmip.settings = replace(kmip.settings, lease_time=0)   # objects have no Lease Time
    uid = kmip.create_aes(256)
    assert "Lease Time" not in _attributes(kmip, uid)
    assert _check(kmip, uid, _lease(10 ** 6)) == "ok"


def test_check_lease_time_edges(kmip: Kmip) -> None:
    """Zero is within any Lease Time, the largest Interval is beyond the server's, and a
    Lease Time that is not an Interval (KMIP 2.1 §4.25) is Invalid_Field, as 1.x and 2.x."""
    uid = kmip.create_aes(256)
    assert _check(kmip, uid, _lease(0)) == "ok"
    assert _check(kmip, uid, _lease(2 ** 32 - 1)) == "Permission_Denied"
    for wrong in (Item(int(Tag.LEASE_TIME), ItemType.INTEGER, 1),
                  Item(int(Tag.LEASE_TIME), ItemType.LONG_INTEGER, -1),
                  Item(int(Tag.LEASE_TIME), ItemType.DATE_TIME, 1),
                  Item(int(Tag.LEASE_TIME), ItemType.TEXT_STRING, "1"),
                  Item(int(Tag.LEASE_TIME), ItemType.BOOLEAN, True)):
        assert _check(kmip, uid, wrong) == "Invalid_Field", wrong
