"""Signature Verify (KMIP 2.1 §6.1.51): whether Signature Data is a valid signature of
Data (or of Digested Data) under one key object, public or private (its public half):
Validity Indicator Valid or Invalid. Checked and audited as ``verify``. Multi-part
requests answer Operation_Not_Supported."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.crypto_params import byte_field, raw_crypto, refuse_multi_part, target
from keykeeper.kmip.ops.sign import message
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, ValidityIndicator
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.SIGNATURE_VERIFY


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Unique Identifier, Cryptographic Parameters?, Data or Digested Data,
    Signature Data. Response: Unique Identifier, Validity Indicator."""
    refuse_multi_part(payload)
    obj = target(call, payload)
    obj.check_dates(call, protect=False)
    data, prehashed = message(payload)
    signature = byte_field(payload, Tag.SIGNATURE_DATA, "Signature Data")
    if signature is None:
        raise KmipError("Invalid_Field", "the request has no Signature Data")
    valid = raw_crypto(call).verify(call.ctx, obj.key.id, obj.oid.version,
                                    obj.params(payload), data, signature,
                                    prehashed=prehashed)
    indicator = ValidityIndicator.VALID if valid else ValidityIndicator.INVALID
    return [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, obj.uid),
            Item(Tag.VALIDITY_INDICATOR, ItemType.ENUMERATION, int(indicator))]
