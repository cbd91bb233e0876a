"""Encrypt (KMIP 2.1 §6.1.16): Data under one symmetric key or RSA key object, in the
mode its Cryptographic Parameters name (the request's, over the object's stored ones):
AES ECB / CBC / CTR / GCM / CCM, ChaCha20, ChaCha20-Poly1305, RSA-OAEP, RSA PKCS#1 v1.5.
Checked, counted and audited as ``encrypt`` (service/raw_crypto.py). Multi-part requests (Init
Indicator, Correlation Value, Final Indicator) run for AES ECB / CBC / CTR / GCM and the
ChaCha20 stream (service/raw_streams.py); other modes answer Operation_Not_Supported."""

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
from keykeeper.service.raw_crypto import RawEncrypted
from keykeeper.service.raw_streams import RawPart

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.ENCRYPT


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Unique Identifier (or the ID Placeholder), Cryptographic Parameters?,
    Data, IV/Counter/Nonce?, Authenticated Encryption Additional Data?. Response: Unique
    Identifier, Data, IV/Counter/Nonce (when the server drew it: Random IV, or none given),
    Authenticated Encryption Tag (AEAD modes; a multi-part GCM encryption: with the final
    part), Correlation Value (every part of a multi-part call but the final one)."""
    parts = multi_part(payload)
    obj = target(call, payload)
    obj.check_dates(call, protect=True)
    data = data_field(payload)
    iv = byte_field(payload, Tag.IV_COUNTER_NONCE, "IV/Counter/Nonce")
    aad = byte_field(payload, Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                     "Authenticated Encryption Additional Data")
    correlation: bytes | None = None
    out: RawEncrypted | RawPart
    if parts is None:
        out = raw_crypto(call).encrypt(call.ctx, obj.key.id, obj.oid.version,
                                       obj.params(payload), data, iv=iv, aad=aad)
    else:
        out = part = raw_crypto(call).part(call.ctx, "encrypt", obj.key.id, obj.oid.version,
                                    obj.params(payload), data, correlation=parts[0],
                                    final=parts[1], iv=iv, aad=aad)
        correlation = part.correlation
    obj.consume(call, len(data), "encrypt")  # the output is withheld past the limit
    items = [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, obj.uid),
             Item(Tag.DATA, ItemType.BYTE_STRING, out.data)]
    if out.iv is not None:
        items.append(Item(Tag.IV_COUNTER_NONCE, ItemType.BYTE_STRING, out.iv))
    if out.tag is not None:
        items.append(Item(Tag.AUTHENTICATED_ENCRYPTION_TAG, ItemType.BYTE_STRING, out.tag))
    if correlation is not None:
        items.append(Item(Tag.CORRELATION_VALUE, ItemType.BYTE_STRING, correlation))
    return items
