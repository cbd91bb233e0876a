"""Re-Key Key Pair (KMIP 1.4 §4.5, KMIP 2.1 §6.1.42): a new version of the key pair's key
(as Re-Key, kmip/ops/rekey.py): the new private key ``{key_id}/{n+1}`` and public key
``{key_id}/{n+1}/public``, linked to their predecessors.
Request: Private Key Unique Identifier, Offset, Common / Private / Public templates.
Response: Private Key Unique Identifier, Public Key Unique Identifier."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ops.create_key_pair import pair_response, templates
from keykeeper.kmip.ops.rekey import check_offset, rotate
from keykeeper.kmip.template import store_template
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import parse_uid

OPERATION = Operation.RE_KEY_KEY_PAIR


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER))
    oid = parse_uid(uid)
    if oid is not None and oid.public:
        raise KmipError("Invalid_Field", "Re-Key Key Pair names the private key")
    check_offset(payload)
    common, private, public = templates(call, payload)
    key_id, number = rotate(call, uid, common.merged(private), pair=True)
    key = call.services.keys.get(call.ctx, key_id)
    store_template(call, key, common.merged(public), version=number, public=True)
    call.ctx.key_version = number
    return pair_response(call, key_id, number)
