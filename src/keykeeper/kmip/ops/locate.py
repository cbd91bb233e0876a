"""Locate (KMIP 1.4 §4.9, KMIP 2.1 §6.1.27): the Unique Identifiers of the objects whose
attributes match every attribute of the request, among the keys the caller may see
(``KeyAdmin.list_keys`` authorizes ``key.list`` and skips keys outside the caller's grants).

Matching: an object matches an attribute when one of its instances of that attribute
matches; a Structure matches when each field the request gives matches; Cryptographic
Usage Mask matches when the object has every bit the request sets; a Date-Time attribute
given twice is a range, both ends included (KMIP 2.1 §6.1.27). Objects come newest first
(Initial Date), then ``Offset Items`` are skipped and at most ``Maximum Items`` returned.
``Storage Status Mask`` (default on-line): destroyed objects are in "destroyed storage"
(bit 4 in 2.x) and found only when it is asked for. ``Located Items`` (the number of
matches before Offset/Maximum) is answered when the request paged with either.
A single result becomes the batch's ID Placeholder. A Certificate's attributes read from
its DER (kmip/certificate.py) are matched when the request names one, for the
certificates the caller may read (``key.get``).
"""

from __future__ import annotations

from collections.abc import Iterator

from keykeeper.domain.keys import Key
from keykeeper.kmip.attributes import object_values, read_attributes, supported
from keykeeper.kmip.attributes_computed import is_asymmetric
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.certificate import certificate_values, wants_der
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, State
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import ObjectId
from keykeeper.store.keys import KeyFilter

OPERATION = Operation.LOCATE

_ONLINE, _DESTROYED = 1, 4
_PAGE = 500


def _int(payload: Item, tag: int) -> int | None:
    got = payload.find(tag)
    if got is None:
        return None
    if not isinstance(got.value, int) or isinstance(got.value, bool) or got.value < 0:
        raise KmipError("Invalid_Field", "Maximum Items, Offset Items and Storage Status "
                        "Mask are non-negative Integers")
    return got.value


def _visible_keys(call: Call, dated: bool = False) -> Iterator[Key]:
    """Every key the caller may see, a page at a time; ``dated``: learn each page's
    creation states first, in one query (KmipAttributeStore.prime_never_activated)."""
    token: str | None = None
    store = call.services.kmip_attributes if dated else None
    while True:
        keys, token = call.services.keys.list_keys(call.ctx, KeyFilter(), _PAGE, token)
        if store is not None:
            store.prime_never_activated(keys)
        yield from keys
        if token is None:
            return


def _objects(key: Key) -> Iterator[ObjectId]:
    asym = is_asymmetric(key)
    for v in key.versions:
        if not v.public_only:
            yield ObjectId(key.id, v.version)
        if asym:
            yield ObjectId(key.id, v.version, public=True)


def item_matches(want: Item, have: Item, name: str) -> bool:
    """Whether an object's value ``have`` matches a request's value ``want``."""
    if want.type is ItemType.STRUCTURE:
        if have.type is not ItemType.STRUCTURE:
            return False
        return all(any(c.tag == w.tag and item_matches(w, c, "") for c in have.children)
                   for w in want.children)
    if want.type != have.type:
        return False
    if name == "Cryptographic Usage Mask" and isinstance(want.value, int) \
            and isinstance(have.value, int):
        return have.value & want.value == want.value
    return want.value == have.value


def _criteria(filters: dict[str, list[Item]]) -> list[tuple[str, list[Item], bool]]:
    out = []
    for name, values in filters.items():
        if (len(values) == 2 and all(v.type is ItemType.DATE_TIME for v in values)):
            out.append((name, values, True))
        else:
            out.extend((name, [v], False) for v in values)
    return out


def _matches(values: list[tuple[str, int, Item]],
             criteria: list[tuple[str, list[Item], bool]]) -> bool:
    for name, wanted, is_range in criteria:
        have = [v for n, _, v in values if n.lower() == name.lower()]
        if is_range:
            lo, hi = sorted(int(w.value) for w in wanted if isinstance(w.value, int))
            if not any(isinstance(h.value, int) and lo <= h.value <= hi for h in have):
                return False
        elif not any(item_matches(wanted[0], h, name) for h in have):
            return False
    return True


def _state(values: list[tuple[str, int, Item]]) -> int | None:
    for n, _, v in values:
        if n == "State" and isinstance(v.value, int):
            return v.value
    return None


def _initial(values: list[tuple[str, int, Item]]) -> int:
    for n, _, v in values:
        if n == "Initial Date" and isinstance(v.value, int):
            return v.value
    return 0


def handle(call: Call, payload: Item) -> list[Item]:
    maximum = _int(payload, Tag.MAXIMUM_ITEMS)
    offset = _int(payload, Tag.OFFSET_ITEMS) or 0
    mask = _int(payload, Tag.STORAGE_STATUS_MASK)
    mask = _ONLINE if mask is None or mask == 0 else mask
    criteria = _criteria(read_attributes(payload, call.version))
    for name, _, _ in criteria:   # one the version lacks (Certificate Identifier in 2.x)
        if not supported(name, call.version):
            raise KmipError("Invalid_Field", f"{name} is not an attribute of KMIP "
                            f"{call.version[0]}.{call.version[1]}")
    der = wants_der(name for name, _, _ in criteria)   # a Certificate's, from its DER
    # Whether a key never activated lacks its Activation Date matters to that filter only
    # (object_values asks the store for it: one query per page of keys, _visible_keys).
    dated = any(name == "Activation Date" for name, _, _ in criteria)
    destroyed = (int(State.DESTROYED), int(State.DESTROYED_COMPROMISED))
    found: list[tuple[int, str]] = []
    for key in _visible_keys(call, dated):
        for oid in _objects(key):
            values = object_values(call, key, oid, activation=dated)
            if der:
                values = certificate_values(call, key, oid, values, strict=False)
            gone = _state(values) in destroyed
            if (gone and not mask & _DESTROYED) or (not gone and not mask & _ONLINE):
                continue
            if _matches(values, criteria):
                found.append((_initial(values), str(oid)))
    found.sort(key=lambda f: (-f[0], f[1]))
    uids = [uid for _, uid in found][offset:]
    if maximum is not None and maximum > 0:
        uids = uids[:maximum]
    out: list[Item] = []
    if payload.find(Tag.MAXIMUM_ITEMS) is not None or payload.find(Tag.OFFSET_ITEMS) is not None:
        out.append(Item(int(Tag.LOCATED_ITEMS), ItemType.INTEGER, len(found)))
    out.extend(Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, u) for u in uids)
    if len(uids) == 1:
        call.placeholder = uids[0]
    return out
