"""KMIP attributes of keykeeper's objects: the helpers every operation uses.

A KMIP object (a key version or its public part, kmip/uids.py) has computed attributes
(attributes_computed.py: what keykeeper's key model decides) and stored ones
(attributes_store.py: everything else a client gave, in the key's ``kmip.*`` labels,
written through service/kmip_attributes.py). A stored instance with the same name and
Attribute Index replaces a computed one, and a stored ``null`` hides it.

Normal form (attributes_catalogue.py): a spec name and a value Item under the
attribute's own tag (``Attribute Value`` for a custom ``x-``/``y-`` attribute).

API (the plan's contract):
    read_attributes(payload, version) -> {name: [value items]}
    write_attributes(values, version) -> response items (2.x: one Attributes; 1.x: Attribute s)
    object_attributes(call, obj) -> every attribute of an object, as 2.x items
    object_values(call, key, oid) -> every attribute of an object, in normal form
    defined_in(values, version) -> only the values the protocol version defines
    store_attributes(call, key, attrs, version=, public=) -> persist the non-computed ones
    resolve_object(call, uid) -> (Key, ObjectId), authorized as ``key.get``
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keykeeper.crypto.stored import CONTROL_CHARACTERS
from keykeeper.domain.keys import Key
from keykeeper.errors import NotFound
from keykeeper.kmip.attributes_catalogue import (
    by_name,
    by_tag,
    from_v1,
    from_v2,
    is_custom,
    to_v1,
    to_v2,
)
from keykeeper.kmip.attributes_computed import computed_attributes, is_asymmetric
from keykeeper.kmip.attributes_store import decode_object, encode_object, object_scope
from keykeeper.kmip.call import Call, KmipError, object_not_found
from keykeeper.kmip.stored_data import stored_object_type
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import HashingAlgorithm, KeyFormatType
from keykeeper.kmip.ttlv.tags import Tag, tag_since, tag_spec_name
from keykeeper.kmip.uids import ObjectId, parse_uid
from keykeeper.kmip.versions import value_since

__all__ = [
    "NAMESPACE_ATTRIBUTE",
    "Digester",
    "Values",
    "defined_in",
    "mark_retrieved",
    "material_digest",
    "merged_values",
    "object_attributes",
    "object_values",
    "planned_labels",
    "read_attributes",
    "resolve_object",
    "store_attributes",
    "supported",
    "transfer_attributes",
    "with_digest",
    "write_attributes",
]

NAMESPACE_ATTRIBUTE = "x-keykeeper-namespace"
"""The custom attribute naming the namespace a Create or Register puts its key in."""

# Never stored: keykeeper's key model (or the server) is their only source.
_NOT_STORED = frozenset({
    "Unique Identifier", "Object Type", "State", "Initial Date", "Last Change Date",
    "Activation Date", "Deactivation Date", "Destroy Date", "Compromise Date",
    "Compromise Occurrence Date", "Extractable", "Never Extractable",
    "Always Sensitive", "Fresh", "Key Value Present", NAMESPACE_ATTRIBUTE,
})


Values = list[tuple[str, int, Item]]

# Attributes whose tag is older than the attribute (a Key Block field before 2.0).
_ATTRIBUTE_SINCE = {"Key Format Type": (2, 0)}
# Attributes KMIP 2.0 removed (deprecated in 1.1 for their X.509 ones; kmip/certificate.py).
_ATTRIBUTE_UNTIL = {"Certificate Identifier": (2, 0), "Certificate Subject": (2, 0),
                    "Certificate Issuer": (2, 0)}


def _containers() -> frozenset[int]:
    names = ("TEMPLATE_ATTRIBUTE", "ATTRIBUTES", "COMMON_TEMPLATE_ATTRIBUTE",
             "PRIVATE_KEY_TEMPLATE_ATTRIBUTE", "PUBLIC_KEY_TEMPLATE_ATTRIBUTE",
             "COMMON_ATTRIBUTES", "PRIVATE_KEY_ATTRIBUTES", "PUBLIC_KEY_ATTRIBUTES")
    return frozenset(int(getattr(Tag, n)) for n in names if hasattr(Tag, n))


def supported(name: str, version: tuple[int, int]) -> bool:
    """Whether the attribute exists in protocol ``version`` (a custom one always does)."""
    d = by_name(name)
    if d is None:
        return True
    return (max(tag_since(d.tag), _ATTRIBUTE_SINCE.get(d.name, (1, 0))) <= version
            < _ATTRIBUTE_UNTIL.get(d.name, (99, 0)))


def read_attributes(payload: Item, version: tuple[int, int]) -> dict[str, list[Item]]:
    """The attributes a request carries, ``{spec name: [values in normal form]}``.

    ``payload`` may be a Request Payload (its Template-Attribute, Attributes or direct
    Attribute children are read) or one such container itself. 1.x ``Attribute``
    structures and 2.x attribute items are both understood in any version (a 1.x
    Template-Attribute's Name references to templates are ignored).
    KmipError(Invalid_Field) for an unknown attribute (a 2.x container's item that is not
    an attribute included) or a 1.x Attribute without a value.
    """
    containers = _containers()
    found: dict[str, list[Item]] = {}

    def take(item: Item, in_v2_container: bool) -> None:
        if item.tag == Tag.ATTRIBUTE:
            if item.find(Tag.VENDOR_IDENTIFICATION) is not None:
                name, value = from_v2(item)
            else:
                name, _, got = from_v1(item)
                if got is None:
                    raise KmipError("Invalid_Field", f"attribute '{name[:64]}' has no value")
                value = got
            _check_text(name, value)
            found.setdefault(name, []).append(value)
        elif in_v2_container:
            if by_tag(item.tag) is None:  # ignoring it would widen a Locate to everything
                what = tag_spec_name(item.tag) or hex(item.tag)
                raise KmipError("Invalid_Field", f"{what} is not an attribute keykeeper knows")
            name, value = from_v2(item)
            _check_text(name, value)
            found.setdefault(name, []).append(value)

    def scan(container: Item) -> None:
        v2 = container.tag in _v2_containers()
        for child in container.children:
            if child.tag in containers:
                scan(child)
            else:
                take(child, v2)

    if payload.tag in containers:
        scan(payload)
    else:
        for child in payload.children:
            if child.tag in containers:
                scan(child)
            elif child.tag == Tag.ATTRIBUTE:
                take(child, False)
    return found


def _check_text(name: str, value: Item) -> None:
    """Invalid_Field when a Text String of the attribute value holds a character XML 1.0
    cannot carry (crypto/stored.py CONTROL_CHARACTERS: a NUL, an ESC, ...): kept, it
    could not be answered over the XML encoding."""
    if value.type is ItemType.TEXT_STRING:
        if isinstance(value.value, str) and CONTROL_CHARACTERS.search(value.value):
            raise KmipError("Invalid_Field", f"attribute '{name[:64]}' holds a control "
                            "character")
    elif value.type is ItemType.STRUCTURE and isinstance(value.value, list):
        for child in value.value:
            _check_text(name, child)


def _v2_containers() -> frozenset[int]:
    names = ("ATTRIBUTES", "COMMON_ATTRIBUTES", "PRIVATE_KEY_ATTRIBUTES",
             "PUBLIC_KEY_ATTRIBUTES")
    return frozenset(int(getattr(Tag, n)) for n in names if hasattr(Tag, n))


def _name_of(item: Item) -> str:
    name, _ = from_v2(item)
    return name


def write_attributes(values: list[Item], version: tuple[int, int]) -> list[Item]:
    """Response items for attribute values given as 2.x items (own tag, or a vendor
    Attribute structure): 2.x one ``Attributes`` structure; 1.x ``Attribute``
    structures, Attribute Index counted per name. Attributes the version does not
    define are left out."""
    kept = [(_name_of(v), v) for v in values]
    kept = [(n, v) for n, v in kept if supported(n, version)]
    if version >= (2, 0):
        return [Item.structure(int(Tag.ATTRIBUTES), [v for _, v in kept])]
    counts: dict[str, int] = {}
    out = []
    for name, v in kept:
        index = counts.get(name, 0)
        counts[name] = index + 1
        _, value = from_v2(v)
        out.append(to_v1(name, value, index))
    return out


def resolve_object(call: Call, uid: str, operation: str = "key.get") -> tuple[Key, ObjectId]:
    """The key and object a Unique Identifier names, authorized for ``operation``.
    Object_Not_Found (Item_Not_Found before KMIP 2.0; call.py ``object_not_found``) for a
    malformed UID, an unknown or invisible key, a missing version, or ``/public`` of a
    symmetric key. ``{key}/{v}`` of a public key registered alone is answered as its
    canonical ``{key}/{v}/public``."""
    oid = parse_uid(uid)
    if oid is None:
        raise object_not_found()
    try:
        key = call.services.keys.get(call.ctx, oid.key_id, operation)
    except NotFound:
        raise object_not_found() from None
    version = key.version(oid.version)
    if version is None or (oid.public and not is_asymmetric(key)):
        raise object_not_found()
    call.ctx.key_version = oid.version
    if version.public_only and not oid.public:  # a public key registered alone
        oid = ObjectId(oid.key_id, oid.version, public=True)
    return key, oid


def merged_values(key: Key, oid: ObjectId, *, lease_time: int = 0,
                  never_activated: bool = False) -> Values:
    """Every attribute instance of the object, ``(name, index, value)``: custom ones
    first, then the computed ones in their order, then other stored ones.
    ``lease_time``, ``never_activated``: as attributes_computed.computed_attributes takes
    them (:func:`object_values` gives the call's)."""
    instances: dict[str, dict[int, Item]] = {}
    order: list[str] = []
    for name, index, item in computed_attributes(key, oid, lease_time=lease_time,
                                                 never_activated=never_activated):
        if name not in instances:
            order.append(name)
        instances.setdefault(name, {})[index] = item
    stored = decode_object(key.labels, object_scope(oid.version, oid.public))
    customs = [n for n in stored if is_custom(n)]
    for name, pairs in stored.items():
        if name not in instances and name not in customs:
            order.append(name)
        slot = instances.setdefault(name, {})
        for index, got in pairs:
            if got is None:
                slot.pop(index, None)
            else:
                slot[index] = got
    out: Values = []
    for name in customs + order:
        for index in sorted(instances.get(name, {})):
            out.append((name, index, instances[name][index]))
    return out


def object_values(call: Call, key: Key, oid: ObjectId, *, activation: bool = True) -> Values:
    """:func:`merged_values` of the object as the call sees it: the server's Lease Time;
    no Activation Date for a key that left Pre-Active without ever being Active
    (KmipAttributeStore.never_activated, KMIP 2.1 §4.1; ``activation`` False: not asked,
    for a caller to which that date does not matter); and no instance whose Enumeration
    value the request's version does not define (:func:`defined_in`)."""
    store = call.services.kmip_attributes
    never = activation and store is not None and store.never_activated(key)
    return defined_in(merged_values(key, oid, lease_time=call.settings.lease_time,
                                    never_activated=never), call.version)


def defined_in(values: Values, version: tuple[int, int]) -> Values:
    """``values`` without the instances holding an Enumeration value ``version`` does not
    define (Cryptographic Algorithm Ed25519, or Digital Signature Algorithm SHA3-256 with
    RSA, to a 1.3 client): the object does not have that attribute in that version, so
    neither Get Attributes, Get Attribute List nor a Locate filter sees it (the answer's
    own filter, versions.py, is the last guard)."""
    return [v for v in values if v[2].type is not ItemType.ENUMERATION
            or not isinstance(v[2].value, int) or value_since(v[2].tag, v[2].value)
            <= version]


def _obj(obj: Any, version: int | None, public: bool) -> tuple[Key, ObjectId]:
    if isinstance(obj, Key):
        return obj, ObjectId(obj.id, version or obj.primary_version, public)
    if isinstance(obj, tuple) and len(obj) == 3:
        key, number, pub = obj
        return key, ObjectId(key.id, int(number), bool(pub))
    key = obj.key
    return key, ObjectId(key.id, int(obj.version), bool(getattr(obj, "public", False)))


def object_attributes(call: Call, obj: Any, version: int | None = None,
                      public: bool = False) -> list[Item]:
    """All attributes of an object as 2.x items (the version filter is the caller's:
    ``write_attributes`` or the processor). ``obj``: a Key (with ``version``, default
    its primary version, and ``public``), a tuple ``(key, version, public)``, or an
    object with ``key``, ``version`` and ``public`` attributes."""
    key, oid = _obj(obj, version, public)
    return [to_v2(name, value) for name, _, value in object_values(call, key, oid)]


def _plan_store(labels: Mapping[str, str], key: Key, oid: ObjectId,
                attrs: Mapping[str, list[Item]]) -> dict[str, str]:
    scope = object_scope(oid.version, oid.public)
    stored = decode_object(labels, scope)
    computed: dict[str, list[tuple[int, Item]]] = {}
    for name, index, item in computed_attributes(key, oid):
        computed.setdefault(name, []).append((index, item))
    sensitive = attrs.get("Sensitive")
    if sensitive and "Always Sensitive" not in stored:  # sensitive from the start
        attrs = {**attrs, "Always Sensitive": [
            Item(int(Tag.ALWAYS_SENSITIVE), sensitive[-1].type, sensitive[-1].value)]}
    for name, values in attrs.items():
        d = by_name(name)
        storable = name not in _NOT_STORED or name == "Always Sensitive"
        if not storable or (d is None and not is_custom(name)) or not values:
            continue
        have = computed.get(name, []) + [(i, v) for i, v in stored.get(name, [])
                                         if v is not None]
        if d is not None and not d.multi:
            if [v for _, v in computed.get(name, [])] == values[-1:]:
                continue
            stored[name] = [(0, values[-1])]
            continue
        if d is None and len(values) == 1:
            stored[name] = [(0, values[0])]
            continue
        present = [v for _, v in have]
        nxt = max((i for i, _ in have), default=-1) + 1
        for value in values:
            if value in present:
                continue
            stored.setdefault(name, []).append((nxt, value))
            present.append(value)
            nxt += 1
    return encode_object(labels, scope, stored)


def store_attributes(call: Call, key: Key, attrs: Mapping[str, list[Item]], *,
                     version: int | None = None, public: bool = False) -> Key:
    """Persist the attributes of ``attrs`` (as read_attributes gives them) that the key
    model does not decide, on object ``key/version[/public]`` (default: the primary
    version's main object), in one transaction, with the Digest of a secret or private
    key's material (so that it outlives a Destroy). Values equal to the computed ones are not
    stored. Returns the key as written. KmipError(Invalid_Field) for a value too long,
    InvalidArgument for too many attributes, PermissionDenied without ``key.update``."""
    oid = ObjectId(key.id, version or key.primary_version, public)
    store = call.services.kmip_attributes
    assert store is not None
    attrs = with_digest(key, oid, attrs, lambda: store.digest(call.ctx, key, oid.version))
    kmip_labels = {k: v for k, v in key.labels.items() if k.startswith("kmip.")}
    if _plan_store(kmip_labels, key, oid, attrs) == kmip_labels:
        return key
    return store.change(call.ctx, key.id, lambda labels: _plan_store(labels, key, oid, attrs))


Digester = Callable[[], tuple[bytes, str] | None]


def with_digest(key: Key, oid: ObjectId, attrs: Mapping[str, list[Item]],
                digest: Digester) -> Mapping[str, list[Item]]:
    """``attrs`` with the Digest of the object's material added (``digest()``: its
    ``(SHA-256, format)`` or None, service/kmip_attributes.py) unless given or stored
    already, or the object is a public part (its Digest is computed), or a Secret Data or
    Opaque Object: a hash of a password in its labels (which REST shows to ``key.get``)
    would let it be guessed offline."""
    if (oid.public or "Digest" in attrs or stored_object_type(key.algorithm) is not None
            or "Digest" in decode_object(key.labels, object_scope(oid.version, False))):
        return attrs
    got = digest()
    return attrs if got is None else {**attrs, "Digest": [_digest_item(*got)]}


def planned_labels(key: Key, attrs: Mapping[str, list[Item]], digest: Digester, *,
                   version: int = 1, public: bool = False
                   ) -> Callable[[Mapping[str, str]], Mapping[str, str]]:
    """For a key being created (Create, Register: one transaction with the key,
    service/kmip_keys.py ``KmipKeys.create``): the change of its ``kmip.*`` labels that
    :func:`store_attributes` would make on object ``key/version[/public]``, Digest
    included."""
    oid = ObjectId(key.id, version, public)
    attrs = with_digest(key, oid, attrs, digest)
    return lambda labels: _plan_store(labels, key, oid, attrs)


def mark_retrieved(call: Call, key: Key, oid: ObjectId) -> None:
    """A Get answered the object's key material: its Fresh attribute becomes False
    (KMIP 2.1 §4.23). Written once (authorized as ``key.get``); later calls are free."""
    scope = object_scope(oid.version, oid.public)
    if decode_object(key.labels, scope).get("Fresh"):
        return
    store = call.services.kmip_attributes
    assert store is not None
    stale = Item(int(Tag.FRESH), ItemType.BOOLEAN, False)

    def change(labels: Mapping[str, str]) -> Mapping[str, str]:
        stored = decode_object(labels, scope)
        stored["Fresh"] = [(0, stale)]
        return encode_object(labels, scope, stored)

    store.change(call.ctx, key.id, change, operation="key.get")


# Not carried to a replacement by Re-Key (KMIP 2.1 §6.1.41 / §6.1.42): its own identity,
# dates, state, digest, links and revocation; Fresh starts again.
_NOT_TRANSFERRED = frozenset({"Digest", "Link", "Revocation Reason", "Fresh",
                              "Original Creation Date"}) | _NOT_STORED


def transfer_attributes(call: Call, key: Key, old_version: int, new_version: int, *,
                        public: bool = False) -> Key:
    """After a Re-Key made ``new_version``: copy the stored attributes of the replaced
    object to the replacement (KMIP 2.1 §6.1.41), moving its Names (the replaced object
    keeps none). One transaction; a no-op when nothing is stored."""
    old = object_scope(old_version, public)
    new = object_scope(new_version, public)
    if not decode_object(key.labels, old):
        return key
    store = call.services.kmip_attributes
    assert store is not None

    def change(labels: Mapping[str, str]) -> Mapping[str, str]:
        before = decode_object(labels, old)
        after = decode_object(labels, new)
        for name, pairs in before.items():
            if name not in _NOT_TRANSFERRED and name not in after:
                after[name] = list(pairs)
        moved = encode_object(labels, new, after)
        before.pop("Name", None)
        return encode_object(moved, old, before)

    return store.change(call.ctx, key.id, change)


def material_digest(call: Call, key: Key, oid: ObjectId) -> Item | None:
    """The Digest of a secret or private key's material (KMIP 2.1 §4.12), or None without
    software material (or for a public part: its Digest is computed from the public key).
    Computed on request, so Locate never pays for it; Create, Register and Re-Key put it
    in the attributes they store, so that it outlives the material (Destroy keeps it).
    None for a Secret Data or Opaque Object (with_digest says why)."""
    store = call.services.kmip_attributes
    if store is None or oid.public or stored_object_type(key.algorithm) is not None:
        return None
    got = store.digest(call.ctx, key, oid.version)
    return None if got is None else _digest_item(*got)


def _digest_item(value: bytes, fmt: str) -> Item:
    kind = {"raw": KeyFormatType.RAW, "pkcs1": KeyFormatType.PKCS_1}.get(fmt,
                                                                         KeyFormatType.PKCS_8)
    return Item.structure(int(Tag.DIGEST), [
        Item(int(Tag.HASHING_ALGORITHM), ItemType.ENUMERATION, int(HashingAlgorithm.SHA_256)),
        Item(int(Tag.DIGEST_VALUE), ItemType.BYTE_STRING, value),
        Item(int(Tag.KEY_FORMAT_TYPE), ItemType.ENUMERATION, int(kind))])
