"""Get (KMIP 1.4 §4.11, KMIP 2.1 §6.1.25): an object's key material in the Key Format
Type asked for (kmip/keyblock.py; none: the format it was registered in, else
keyblock.default_format), optionally wrapped (Key Wrapping Specification,
kmip/keywrap.py). A symmetric or private key is served only when the key was created
exportable (KMIP Extractable; Not_Extractable otherwise, Permission_Denied before KMIP
1.4) and the caller holds ``key.export`` (service/kmip_keys.py ``material``:
Permission_Denied otherwise); a public key always (``public_key``). A
destroyed object has no material: Object_Destroyed from KMIP 2.0 on, else
Wrong_Key_Lifecycle_State.
Request: Unique Identifier (or the ID Placeholder), Key Format Type, Key Wrap Type, Key
Compression Type, Key Wrapping Specification. Response: Object Type, Unique Identifier,
the object. A Secret Data or Opaque Object is served as kmip/stored_data.py says, under
the same conditions as a symmetric key; a Certificate as registered, under the
conditions of a public key (``public_key``; kmip/certificate.py)."""

from __future__ import annotations

from keykeeper.crypto.registry import get_spec
from keykeeper.domain.states import ERASED
from keykeeper.kmip.attributes import mark_retrieved
from keykeeper.kmip.attributes_store import decode_object, object_scope
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.certificate import encode_certificate
from keykeeper.kmip.keyblock import (
    OBJECT_TAGS,
    default_format,
    encode_material,
    enum_item,
    key_block,
)
from keykeeper.kmip.keywrap import wrap_key_value
from keykeeper.kmip.objects import KmipObject, key_algorithm, kmip_keys, resolve, text_item
from keykeeper.kmip.stored_data import STORED_ALGORITHMS, data_type, encode_stored
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import KeyFormatType, ObjectType, Operation, State
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import ObjectId

OPERATION = Operation.GET

_DESTROYED = (int(State.DESTROYED), int(State.DESTROYED_COMPROMISED))


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.UNIQUE_IDENTIFIER))
    obj = resolve(call, uid, "key.get")
    call.placeholder = obj.uid
    otype = obj.object_type
    erased = obj.version.state in ERASED and not obj.pair_public   # (its PEM is kept)
    if erased or obj.state in _DESTROYED:
        reason = "Object_Destroyed" if call.version >= (2, 0) else "Wrong_Key_Lifecycle_State"
        raise KmipError(reason, "the object is destroyed: its key material is gone")
    if payload.find(int(Tag.KEY_COMPRESSION_TYPE)) is not None:
        raise KmipError("Key_Compression_Type_Not_Supported",
                        "keys are served uncompressed only")
    spec = get_spec(obj.key.algorithm)
    fmt_item = payload.find(int(Tag.KEY_FORMAT_TYPE))
    default = default_format(otype, spec.family)
    registered = _registered_format(obj) if fmt_item is None else None
    fmt = (fmt_item.value if fmt_item is not None and isinstance(fmt_item.value, int)
           else registered if registered is not None else default)
    if otype == ObjectType.CERTIFICATE:
        return _get_certificate(call, payload, obj, fmt_item is not None)
    public = otype == ObjectType.PUBLIC_KEY
    if not public:
        _check_extractable(call, obj)
    if otype in STORED_ALGORITHMS:
        return _get_stored(call, payload, obj, otype, fmt_item is not None,
                           fmt if fmt_item is not None or registered is not None else None)
    ctx = call.ctx
    material, _ = kmip_keys(call).material(ctx, obj.key, obj.version.version, public=public)
    try:
        encoded = encode_material(otype, material, fmt)
    except KmipError as exc:
        if registered is None or exc.kmip_reason != "Key_Format_Type_Not_Supported":
            raise
        fmt = default   # a format taken on Register but not served: the default one
        encoded = encode_material(otype, material, fmt)
    key_value = Item.structure(int(Tag.KEY_VALUE), [encoded])
    key_value, wrapping_data = _wrapped(call, payload, key_value)
    alg = key_algorithm(obj.key, call.version)
    length = 255 if spec.family == "ed25519" else spec.key_bits
    block = key_block(int(fmt), key_value, alg, length, wrapping_data)
    # Served: the object is no longer Fresh (KMIP 2.1 §4.23; written once).
    mark_retrieved(call, obj.key, ObjectId(obj.oid.key_id, obj.oid.version,
                                           obj.public or obj.version.public_only))
    return [enum_item(int(Tag.OBJECT_TYPE), int(otype)),
            text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid),
            Item(OBJECT_TAGS[otype], ItemType.STRUCTURE, [block])]


def _check_extractable(call: Call, obj: KmipObject) -> None:
    if not obj.key.exportable:
        # KMIP 1.4 §3.46 Extractable: the server does not serve the key in clear;
        # Not_Extractable exists from KMIP 1.4 on.
        raise KmipError("Not_Extractable" if call.version >= (1, 4) else "Permission_Denied",
                        "the object is not extractable: it was created with Extractable "
                        "false (a Create or Register without Extractable takes the server's "
                        "KEYKEEPER_KMIP_EXTRACTABLE_DEFAULT, false unless set)")


def _wrapped(call: Call, payload: Item, key_value: Item) -> tuple[Item, Item | None]:
    """``(Key Value, Key Wrapping Data)``: wrapped as the request's Key Wrapping
    Specification says, or as it is (None) without one. The audit context keeps naming
    the object served, not the wrapping key."""
    spec_item = payload.find(int(Tag.KEY_WRAPPING_SPECIFICATION))
    if spec_item is None:
        return key_value, None
    ctx = call.ctx
    saved = (ctx.namespace, ctx.key_id, ctx.key_version)
    try:
        return wrap_key_value(call, spec_item, key_value)
    finally:
        ctx.namespace, ctx.key_id, ctx.key_version = saved


def _get_stored(call: Call, payload: Item, obj: KmipObject, otype: ObjectType,
                asked: bool, fmt: int | None) -> list[Item]:
    """A Secret Data (in ``fmt``: the one asked for, else the registered one, else Raw;
    wrapped as a key is when asked) or an Opaque Object (served as registered: a Key
    Format Type (``asked``) or Key Wrapping Specification is Invalid_Field),
    kmip/stored_data.py."""
    if otype == ObjectType.OPAQUE_OBJECT and (
            asked or payload.find(int(Tag.KEY_WRAPPING_SPECIFICATION)) is not None):
        raise KmipError("Invalid_Field", "an Opaque Object is served as registered: no Key "
                        "Format Type, no Key Wrapping Specification")
    data, _ = kmip_keys(call).material(call.ctx, obj.key, obj.version.version, public=False)
    fmt = int(KeyFormatType.RAW) if fmt is None else fmt
    value, fields = encode_stored(otype, data, data_type(obj.key.labels), fmt)
    if otype == ObjectType.SECRET_DATA:
        value, wrapping_data = _wrapped(call, payload, value)
        fields.append(key_block(fmt, value, None, None, wrapping_data))
    else:
        fields.append(value)
    mark_retrieved(call, obj.key, ObjectId(obj.oid.key_id, obj.oid.version, False))
    return [enum_item(int(Tag.OBJECT_TYPE), int(otype)),
            text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid),
            Item.structure(int(Tag.SECRET_DATA if otype == ObjectType.SECRET_DATA
                                else Tag.OPAQUE_OBJECT), fields)]


def _get_certificate(call: Call, payload: Item, obj: KmipObject, asked: bool) -> list[Item]:
    """A Certificate (kmip/certificate.py), served as registered: its DER byte for byte,
    authorized as ``public_key`` (a certificate is public, as a public key is; never
    ``key.export``). A Key Format Type (``asked``) or Key Wrapping Specification in the
    request is Invalid_Field: a Certificate has no Key Block."""
    if asked or payload.find(int(Tag.KEY_WRAPPING_SPECIFICATION)) is not None:
        raise KmipError("Invalid_Field", "a Certificate is served as registered: no Key "
                        "Format Type, no Key Wrapping Specification")
    store = call.services.kmip_attributes
    assert store is not None
    handle = store.certificate_handle(call.ctx, obj.key, obj.version.version, "public_key")
    if handle is None:   # destroyed between the check above and this read
        reason = "Object_Destroyed" if call.version >= (2, 0) else "Wrong_Key_Lifecycle_State"
        raise KmipError(reason, "the object is destroyed: its certificate is gone")
    mark_retrieved(call, obj.key, ObjectId(obj.oid.key_id, obj.oid.version, False))
    return [enum_item(int(Tag.OBJECT_TYPE), int(ObjectType.CERTIFICATE)),
            text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid), encode_certificate(handle.der)]


def _registered_format(obj: KmipObject) -> int | None:
    """The Key Format Type the object was registered in (its stored "Key Format Type"
    attribute, ops/register.py), or None: a Get naming no format answers in it."""
    scope = object_scope(obj.oid.version, obj.public or obj.version.public_only)
    for _, item in decode_object(obj.key.labels, scope).get("Key Format Type", []):
        if item is not None and isinstance(item.value, int) \
                and not isinstance(item.value, bool):
            return item.value
    return None
