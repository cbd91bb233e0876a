"""Create Key Pair (KMIP 1.4 §4.2, KMIP 2.1 §6.1.10): one keykeeper key of an asymmetric
algorithm; the private key is ``{key_id}/1`` and the public key ``{key_id}/1/public``
(their Private/Public Key Links are computed, kmip/attributes_computed.py). The purpose
follows the private key's usage mask (Sign: a signing key; else encryption).
Request: Common / Private Key / Public Key Template-Attribute (1.x) or Attributes (2.x).
Response: Private Key Unique Identifier, Public Key Unique Identifier; the ID Placeholder
is the private key's."""

from __future__ import annotations

from keykeeper.kmip.call import Call
from keykeeper.kmip.objects import new_key, text_item
from keykeeper.kmip.template import Template, read_template, store_template
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.CREATE_KEY_PAIR


def templates(call: Call, payload: Item) -> tuple[Template, Template, Template]:
    """(common, private, public) templates of a (Re-Key) Create Key Pair request."""
    common = read_template(call, payload, "COMMON_TEMPLATE_ATTRIBUTE", "COMMON_ATTRIBUTES")
    private = read_template(call, payload, "PRIVATE_KEY_TEMPLATE_ATTRIBUTE",
                            "PRIVATE_KEY_ATTRIBUTES")
    public = read_template(call, payload, "PUBLIC_KEY_TEMPLATE_ATTRIBUTE",
                           "PUBLIC_KEY_ATTRIBUTES")
    return common, private, public


def pair_response(call: Call, key_id: str, version: int) -> list[Item]:
    private_uid, public_uid = f"{key_id}/{version}", f"{key_id}/{version}/public"
    call.placeholder = private_uid
    return [text_item(int(Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER), private_uid),
            text_item(int(Tag.PUBLIC_KEY_UNIQUE_IDENTIFIER), public_uid)]


def handle(call: Call, payload: Item) -> list[Item]:
    common, private, public = templates(call, payload)
    chosen = common.merged(private)
    if chosen.mask is None and public.mask is not None:
        chosen = chosen.merged(Template({"Cryptographic Usage Mask":
                                         public.values["Cryptographic Usage Mask"]}))
    key = new_key(call, chosen, pair=True)
    key = store_template(call, key, common.merged(private))
    store_template(call, key, common.merged(public), public=True)
    return pair_response(call, key.id, 1)
