"""Create (KMIP 1.4 §4.1, KMIP 2.1 §6.1.9): a symmetric key generated here, as one
keykeeper key (version 1), pre-active until activated or its Activation Date comes.
Request: Object Type (Symmetric Key), Template-Attribute (1.x) or Attributes (2.x).
Response: Object Type, Unique Identifier ``{key_id}/1``."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.keyblock import enum_item
from keykeeper.kmip.objects import new_key, text_item
from keykeeper.kmip.template import read_template
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import ObjectType, Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.CREATE


def handle(call: Call, payload: Item) -> list[Item]:
    otype = payload.find(int(Tag.OBJECT_TYPE))
    if otype is None or otype.value != ObjectType.SYMMETRIC_KEY:
        raise KmipError("Invalid_Field", "Create makes Symmetric Keys only here (Create Key "
                        "Pair makes key pairs; Register takes other objects)")
    template = read_template(call, payload)
    key = new_key(call, template, pair=False, store=True)  # attributes in its transaction
    uid = f"{key.id}/1"
    call.placeholder = uid
    return [enum_item(int(Tag.OBJECT_TYPE), int(ObjectType.SYMMETRIC_KEY)),
            text_item(int(Tag.UNIQUE_IDENTIFIER), uid)]
