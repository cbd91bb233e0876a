"""Sign (KMIP 2.1 §6.1.50): a signature of Data, or of a digest given as Digested Data,
with one private key object: RSA PSS or PKCS#1 v1.5 (SHA-1 to SHA-512, SHA3), ECDSA (X9.62
DER, as KMIP returns it). Checked, counted and audited as ``sign``
(service/raw_crypto.py). Multi-part requests answer Operation_Not_Supported."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.crypto_params import byte_field, raw_crypto, refuse_multi_part, target
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle", "message"]

OPERATION = Operation.SIGN


def message(payload: Item) -> tuple[bytes, bool]:
    """(bytes to sign or verify, prehashed): Data, else Digested Data (a digest of the
    Hashing Algorithm's size); Invalid_Field when there is neither, or both."""
    data = byte_field(payload, Tag.DATA, "Data")
    digest = byte_field(payload, Tag.DIGESTED_DATA, "Digested Data")
    if (data is None) == (digest is None):
        raise KmipError("Invalid_Field", "give exactly one of Data or Digested Data")
    return (data, False) if data is not None else (digest or b"", True)


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Unique Identifier, Cryptographic Parameters?, Data or Digested Data.
    Response: Unique Identifier, Signature Data."""
    refuse_multi_part(payload)
    obj = target(call, payload)
    obj.refuse_public("sign")
    obj.check_dates(call, protect=True)
    data, prehashed = message(payload)
    signature = raw_crypto(call).sign(call.ctx, obj.key.id, obj.oid.version,
                                      obj.params(payload), data, prehashed=prehashed)
    obj.consume(call, len(data), "sign")  # the signature is withheld past the limit
    return [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, obj.uid),
            Item(Tag.SIGNATURE_DATA, ItemType.BYTE_STRING, signature)]
