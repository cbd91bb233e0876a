"""MAC (KMIP 2.1 §6.1.29): the full-length HMAC of Data under one HMAC key object
(HMAC-SHA256/384/512 keys; a Cryptographic Algorithm HMAC_SHAx or Hashing Algorithm may
name another hash, SHA-1 to SHA-512). Checked, counted and audited as ``mac``. Multi-part
requests answer Operation_Not_Supported."""

from __future__ import annotations

from keykeeper.kmip.call import Call
from keykeeper.kmip.crypto_params import data_field, raw_crypto, refuse_multi_part, target
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.MAC


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Unique Identifier, Cryptographic Parameters?, Data. Response: Unique
    Identifier, MAC Data."""
    refuse_multi_part(payload)
    obj = target(call, payload)
    obj.refuse_public("compute a MAC")
    obj.check_dates(call, protect=True)
    data = data_field(payload)
    tag = raw_crypto(call).mac(call.ctx, obj.key.id, obj.oid.version, obj.params(payload),
                               data)
    obj.consume(call, len(data), "mac")  # the MAC is withheld past the limit
    return [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, obj.uid),
            Item(Tag.MAC_DATA, ItemType.BYTE_STRING, tag)]
