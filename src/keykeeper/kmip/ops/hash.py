"""Hash (KMIP 1.2 and later; KMIP 2.1 §6.1 "Hash"): the digest of Data under the Hashing
Algorithm of the request's Cryptographic Parameters, through the same keyless service
call shape (and ``random`` permission) as RNG Retrieve. SHA-2 and SHA-3 only (SHA-1, MD5
and the like are Invalid_Field: crypto/digest.py gives the reasons); Data of at most 64 KiB.
Multi-part requests (Correlation Value, Init / Final Indicator) answer
Operation_Not_Supported."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.crypto_params import data_field, parse_params, refuse_multi_part
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.HASH


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Cryptographic Parameters (with a Hashing Algorithm), Data; response: Data
    (the digest, Byte String). Raises KmipError(Invalid_Field) without a Hashing
    Algorithm, InvalidArgument (Invalid_Field) for a refused algorithm or longer Data,
    PermissionDenied without ``random``."""
    refuse_multi_part(payload)
    algorithm = parse_params(payload.find(Tag.CRYPTOGRAPHIC_PARAMETERS)).hash
    if algorithm is None:
        raise KmipError("Invalid_Field",
                        "Hash needs Cryptographic Parameters with a Hashing Algorithm")
    digest = call.services.crypto.digest(call.ctx, algorithm, data_field(payload))
    return [Item(Tag.DATA, ItemType.BYTE_STRING, digest)]
