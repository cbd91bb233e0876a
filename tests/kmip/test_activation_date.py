"""The Activation Date a KMIP object shows (KMIP 1.4 §3.24, 2.1 §4.1; the state machine of
1.4 §3.22 / 2.1 §3.22): set when the object enters Active, or by the client -- never for
an object revoked or destroyed straight from Pre-Active. REST's ``activation_date`` (null
for a key active from creation) is unchanged.

In-process over a real node (SQLite and PostgreSQL, injectable clock:
tests/kmip/objects_support.py), and live through the KMIP listener and REST of one
server (tests/kmip/conftest.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event

from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import ObjectType, Operation, RevocationReasonCode, State
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.key_args import CreateKey
from tests.integration.conftest import node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import (
    A,
    Kmip,
    U,
    alg,
    enum,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    length,
    live_call,
    mask,
    pair,
    template,
    text,
    uid_of,
)

_CESSATION = RevocationReasonCode.CESSATION_OF_OPERATION


def _attribute(kmip: Kmip, uid: str, tag: int, name: str) -> int | None:
    """The value of attribute ``name`` (``tag``) as Get Attributes (all attributes)
    answers it, or None when the object has none."""
    out = kmip(Operation.GET_ATTRIBUTES, text(Tag.UNIQUE_IDENTIFIER, uid))
    if kmip.version >= (2, 0):
        attrs = out.find(int(Tag.ATTRIBUTES))
        assert attrs is not None
        found = attrs.find(int(tag))
        return None if found is None else int(found.value)  # type: ignore[arg-type]
    for attr in out.find_all(int(Tag.ATTRIBUTE)):
        named = attr.find(int(Tag.ATTRIBUTE_NAME))
        if named is not None and named.value == name:
            value = attr.find(int(Tag.ATTRIBUTE_VALUE))
            assert value is not None
            return int(value.value)  # type: ignore[arg-type]
    return None


def _activation(kmip: Kmip, uid: str) -> int | None:
    return _attribute(kmip, uid, Tag.ACTIVATION_DATE, "Activation Date")


def _state(kmip: Kmip, uid: str) -> int | None:
    return _attribute(kmip, uid, Tag.STATE, "State")


def _names(kmip: Kmip, uid: str) -> list[str]:
    """Get Attribute List (1.4: names; 2.1: references, as tag names)."""
    out = kmip(Operation.GET_ATTRIBUTE_LIST, text(Tag.UNIQUE_IDENTIFIER, uid))
    if kmip.version >= (2, 0):
        return [Tag(int(r.value)).name for r in out.find_all(  # type: ignore[arg-type]
            int(Tag.ATTRIBUTE_REFERENCE))]
    return [str(n.value) for n in out.find_all(int(Tag.ATTRIBUTE_NAME))]


def _revoke(kmip: Kmip, uid: str, code: int = _CESSATION) -> None:
    kmip.revoke(uid, code, int(kmip.node.clock().timestamp()) if code
                == RevocationReasonCode.KEY_COMPROMISE else None)


def _at(kmip: Kmip) -> int:
    return int(kmip.node.clock().timestamp())


def test_revoked_from_pre_active_has_no_activation_date(kmip: Kmip) -> None:
    for code in (_CESSATION, RevocationReasonCode.KEY_COMPROMISE):
        uid = kmip.create_aes(256)
        assert _activation(kmip, uid) is None and _state(kmip, uid) == State.PRE_ACTIVE
        kmip.node.clock.advance(seconds=90)
        _revoke(kmip, uid, code)
        assert _state(kmip, uid) in (State.DEACTIVATED, State.COMPROMISED)
        assert _activation(kmip, uid) is None
        assert ("Activation Date" not in _names(kmip, uid)
                and "ACTIVATION_DATE" not in _names(kmip, uid))
        kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
        assert _activation(kmip, uid) is None


def test_destroyed_from_pre_active_has_no_activation_date(kmip: Kmip) -> None:
    uid = kmip.create_aes(256)
    kmip.node.clock.advance(seconds=90)
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert _state(kmip, uid) == State.DESTROYED
    assert _activation(kmip, uid) is None
    # a key pair: neither object was activated
    private, public = pair(kmip, A.EC, 256, int(U.SIGN), int(U.VERIFY))
    kmip.node.clock.advance(seconds=30)
    _revoke(kmip, private)
    assert _activation(kmip, private) is None and _activation(kmip, public) is None


def test_activated_then_revoked_keeps_the_activation_time(kmip: Kmip) -> None:
    uid = kmip.create_aes(256)
    kmip.node.clock.advance(seconds=120)
    activated = _at(kmip)
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert _activation(kmip, uid) == activated
    kmip.node.clock.advance(seconds=120)
    _revoke(kmip, uid)
    assert _state(kmip, uid) == State.DEACTIVATED
    assert _activation(kmip, uid) == activated
    kmip(Operation.DESTROY, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert _activation(kmip, uid) == activated


def test_active_from_creation_shows_its_date(kmip: Kmip) -> None:
    past = Item(int(Tag.ACTIVATION_DATE), ItemType.DATE_TIME, 1_000_000)
    uid = kmip.create_aes(256, Activation_Date=past)
    key = kmip.key(uid)
    assert key.activation_date is not None
    kmip.node.clock.advance(seconds=60)
    _revoke(kmip, uid)
    assert _activation(kmip, uid) == int(key.activation_date.timestamp())
    # made over REST, active from creation (activation_date null): its creation time
    made = kmip.node.services.keys.create(kmip.ctx(), CreateKey(name="rest-active"))
    assert made.activation_date is None
    rest_uid = f"{made.id}/1"
    created = int(made.created_at.timestamp())
    assert _activation(kmip, rest_uid) == created
    kmip.node.clock.advance(seconds=60)
    _revoke(kmip, rest_uid)
    assert _activation(kmip, rest_uid) == created
    assert kmip.key(rest_uid).activation_date is None   # REST's view unchanged
    # made over REST with an activation date in the past: active, its date
    dated = kmip.node.services.keys.create(kmip.ctx(), CreateKey(
        name="rest-dated", activation_date=kmip.node.clock() - timedelta(days=3)))
    assert dated.activation_date is not None
    _revoke(kmip, f"{dated.id}/1")
    assert _activation(kmip, f"{dated.id}/1") == int(dated.activation_date.timestamp())


def test_locate_by_activation_date_skips_never_activated(kmip: Kmip) -> None:
    never = kmip.create_aes(256)
    used = kmip.create_aes(256)
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, used))
    kmip.node.clock.advance(seconds=10)
    for uid in (never, used):
        _revoke(kmip, uid)
    found = kmip(Operation.LOCATE, *_window(kmip, _at(kmip) - 3600, _at(kmip) + 3600))
    uids = [str(u.value) for u in found.find_all(int(Tag.UNIQUE_IDENTIFIER))]
    assert used in uids and never not in uids


def _window(kmip: Kmip, lo: int, hi: int) -> list[Item]:
    """A Locate's attributes: Activation Date twice, a range (KMIP 2.1 §6.1.27)."""
    if kmip.version >= (2, 0):
        return [Item.structure(int(Tag.ATTRIBUTES), [
            Item(int(Tag.ACTIVATION_DATE), ItemType.DATE_TIME, t) for t in (lo, hi)])]
    return [Item.structure(int(Tag.ATTRIBUTE), [
        text(Tag.ATTRIBUTE_NAME, "Activation Date"),
        Item(int(Tag.ATTRIBUTE_VALUE), ItemType.DATE_TIME, t)]) for t in (lo, hi)]


# -- live: one key store, REST unchanged ---------------------------------------------------
def test_live_never_activated_over_kmip_and_rest(live) -> None:  # type: ignore[no-untyped-def]
    created = live_call(live, Operation.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                        template((2, 1), Cryptographic_Algorithm=alg(A.AES),
                                 Cryptographic_Length=length(256),
                                 Cryptographic_Usage_Mask=mask(int(U.ENCRYPT | U.DECRYPT))))
    assert created.ok
    uid = uid_of(created.payload)
    assert live_call(live, Operation.REVOKE, text(Tag.UNIQUE_IDENTIFIER, uid), Item.structure(
        int(Tag.REVOCATION_REASON), [enum(Tag.REVOCATION_REASON_CODE, _CESSATION)])).ok
    got = live_call(live, Operation.GET_ATTRIBUTES, text(Tag.UNIQUE_IDENTIFIER, uid))
    assert got.ok
    attrs = got.payload.find(int(Tag.ATTRIBUTES))
    assert attrs is not None and attrs.find(int(Tag.STATE)) is not None
    assert attrs.find(int(Tag.ACTIVATION_DATE)) is None
    rest = live.rest.get(f"/v1/keys/{uid.split('/')[0]}").json()
    assert rest["state"] == "deactivated" and rest["activation_date"] is None
    made = live.rest.post("/v1/keys", json={"name": "activation-rest", "namespace":
                                            live.namespace, "algorithm": "AES_256_GCM"})
    assert made.status_code in (200, 201), made.text
    body = made.json()
    assert body["activation_date"] is None
    seen = live_call(live, Operation.GET_ATTRIBUTES, text(Tag.UNIQUE_IDENTIFIER,
                                                          f"{body['id']}/1"))
    date = seen.payload.find(int(Tag.ATTRIBUTES)).find(  # type: ignore[union-attr]
        int(Tag.ACTIVATION_DATE))
    assert date is not None
    assert live.rest.get(f"/v1/keys/{body['id']}").json()["activation_date"] is None


def test_locate_by_activation_date_asks_the_store_once_per_page(kmip: Kmip) -> None:
    """Whether a key active from creation was ever active is one query for a page of keys,
    not one per key (store ``created_states``), and remembered after."""
    made = [kmip.node.services.keys.create(kmip.ctx(), CreateKey(name=f"bulk-{n}"))
            for n in range(12)]
    assert all(k.activation_date is None for k in made)   # the case that asks the store
    engine = kmip.node.services.deps.engine
    asked: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "key_events" in statement and "audit_records" not in statement:
            asked.append(statement)

    window = _window(kmip, _at(kmip) - 3600, _at(kmip) + 3600)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        found = kmip(Operation.LOCATE, *window)
        assert len(asked) == 1, asked
        kmip(Operation.LOCATE, *window)
        assert len(asked) == 1   # remembered
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    uids = {str(u.value).split("/")[0] for u in found.find_all(int(Tag.UNIQUE_IDENTIFIER))}
    assert {k.id for k in made} <= uids
