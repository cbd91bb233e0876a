"""Decrypt (KMIP 2.1 §6.1.11): the inverse of Encrypt (kmip/ops/encrypt.py), checked and
audited as ``decrypt``. Any data that does not decrypt (bad padding, bad tag, wrong
length) answers the one uniform Cryptographic_Failure; a missing IV answers
Invalid_Message; RSA PKCS#1 v1.5 decryption is refused (Operation_Not_Supported: a padding
oracle). Multi-part requests run as for Encrypt (kmip/ops/encrypt.py; a GCM tag comes
with the final part)."""

from __future__ import annotations

from keykeeper.kmip.call import Call
from keykeeper.kmip.crypto_params import (
    byte_field,
    data_field,
    multi_part,
    raw_crypto,
    target,
)
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.DECRYPT


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Unique Identifier, Cryptographic Parameters?, Data, IV/Counter/Nonce?,
    Authenticated Encryption Additional Data?, Authenticated Encryption Tag?. Response:
    Unique Identifier, Data, Correlation Value (every part of a multi-part call but the
    final one)."""
    parts = multi_part(payload)
    obj = target(call, payload)
    obj.refuse_public("decrypt")
    obj.check_dates(call, protect=False)
    data = data_field(payload)
    iv = byte_field(payload, Tag.IV_COUNTER_NONCE, "IV/Counter/Nonce")
    aad = byte_field(payload, Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                     "Authenticated Encryption Additional Data")
    tag = byte_field(payload, Tag.AUTHENTICATED_ENCRYPTION_TAG, "Authenticated Encryption Tag")
    if parts is None:
        plaintext = raw_crypto(call).decrypt(call.ctx, obj.key.id, obj.oid.version,
                                             obj.params(payload), data, iv=iv, aad=aad,
                                             tag=tag)
        return [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, obj.uid),
                Item(Tag.DATA, ItemType.BYTE_STRING, plaintext)]
    out = raw_crypto(call).part(call.ctx, "decrypt", obj.key.id, obj.oid.version,
                                obj.params(payload), data, correlation=parts[0],
                                final=parts[1], iv=iv, aad=aad, tag=tag)
    items = [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, obj.uid),
             Item(Tag.DATA, ItemType.BYTE_STRING, out.data)]
    if out.correlation is not None:
        items.append(Item(Tag.CORRELATION_VALUE, ItemType.BYTE_STRING, out.correlation))
    return items
