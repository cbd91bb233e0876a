"""MAC Verify (KMIP 2.1 §6.1.30): whether MAC Data is the full-length HMAC of Data under
one HMAC key object (constant-time compare; a truncated MAC is Invalid): Validity
Indicator. Checked and audited as ``verify_mac``. Multi-part requests answer
Operation_Not_Supported."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.crypto_params import (
    byte_field,
    data_field,
    raw_crypto,
    refuse_multi_part,
    target,
)
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, ValidityIndicator
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.MAC_VERIFY


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Unique Identifier, Cryptographic Parameters?, Data, MAC Data. Response:
    Unique Identifier, Validity Indicator."""
    refuse_multi_part(payload)
    obj = target(call, payload)
    obj.refuse_public("verify a MAC")
    obj.check_dates(call, protect=False)
    data = data_field(payload)
    mac = byte_field(payload, Tag.MAC_DATA, "MAC Data")
    if mac is None:
        raise KmipError("Invalid_Field", "the request has no MAC Data")
    valid = raw_crypto(call).verify_mac(call.ctx, obj.key.id, obj.oid.version,
                                        obj.params(payload), data, mac)
    indicator = ValidityIndicator.VALID if valid else ValidityIndicator.INVALID
    return [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, obj.uid),
            Item(Tag.VALIDITY_INDICATOR, ItemType.ENUMERATION, int(indicator))]
