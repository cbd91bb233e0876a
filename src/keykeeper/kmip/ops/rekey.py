"""Re-Key (KMIP 1.4 §4.4, KMIP 2.1 §6.1.41): a new version of the object's key
(keykeeper's ``key.rotate``, as ``POST /v1/keys/{key}/rotate``), which becomes the
primary version. Version n's Replacement Object Link names n+1 and n+1's Replaced Object
Link names n (computed from the version numbers, kmip/attributes_computed.py). Only the
key's newest version can be re-keyed (an older one already has its replacement), only an
active key (Wrong_Key_Lifecycle_State), and only a key generated here (a registered key
takes new material by Register). Offset: keykeeper activates a new version at once, so
only 0 is taken. Template attributes keykeeper does not model are stored on the new
object; the algorithm and length cannot change (Invalid_Field).
Request: Unique Identifier, Offset, Template-Attribute / Attributes.
Response: Unique Identifier of the replacement."""

from __future__ import annotations

from keykeeper.kmip.attributes import transfer_attributes
from keykeeper.kmip.attributes_computed import is_asymmetric
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.objects import resolve, text_item
from keykeeper.kmip.template import Template, read_template, store_template
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import Operation, State
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.RE_KEY

_FIXED = ("Cryptographic Algorithm", "Cryptographic Length", "Cryptographic Usage Mask")


def check_offset(payload: Item) -> None:
    offset = payload.find(int(Tag.OFFSET))
    if offset is not None and offset.value not in (0, None):
        raise KmipError("Invalid_Field", "keykeeper activates a replacement at once: "
                        "Offset must be 0 (or absent)")


def rotate(call: Call, uid: str, template: Template, *, pair: bool = False
           ) -> tuple[str, int]:
    """Rotate the key of object ``uid``: (key id, new version number). Without ``pair``
    (Re-Key) the object must be a symmetric key: a key pair is re-keyed by Re-Key Key Pair
    (KMIP 2.1 §6.1.41, §6.1.42), so a public or private key is Invalid_Object_Type."""
    obj = resolve(call, uid, "key.rotate")
    if not pair and (obj.public or is_asymmetric(obj.key)):
        raise KmipError("Invalid_Object_Type", "Re-Key replaces a symmetric key; a key pair "
                        "is re-keyed by Re-Key Key Pair")
    if obj.version.version != obj.key.primary_version:
        raise KmipError("Invalid_Field", f"the object was already replaced by "
                        f"{obj.uid_of(obj.key.primary_version)}")
    if obj.state != State.ACTIVE:
        raise KmipError("Wrong_Key_Lifecycle_State", "only an active object can be re-keyed")
    if obj.key.origin == "external":
        raise KmipError("Invalid_Field", "a registered key is not re-keyed here: register "
                        "the new key material instead")
    for name in _FIXED:
        given = template.values.get(name)
        if given and name != "Cryptographic Usage Mask":
            raise KmipError("Invalid_Field", f"Re-Key keeps the {name}")
    key = call.services.keys.rotate(call.ctx, obj.key.id)
    number = key.primary_version
    call.ctx.key_version = number
    # The replacement takes the replaced object's stored attributes, its Names moved
    # (KMIP 2.1 §6.1.41): Locate by a KMIP Name finds the object in use.
    key = transfer_attributes(call, key, obj.version.version, number)
    if pair:
        key = transfer_attributes(call, key, obj.version.version, number, public=True)
    kept = Template({k: v for k, v in template.values.items() if k not in _FIXED})
    store_template(call, key, kept, version=number)
    return key.id, number


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.UNIQUE_IDENTIFIER))
    check_offset(payload)
    key_id, number = rotate(call, uid, read_template(call, payload))
    new_uid = f"{key_id}/{number}"
    call.placeholder = new_uid
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), new_uid)]
