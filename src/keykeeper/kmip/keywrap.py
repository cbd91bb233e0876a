"""Key Wrapping Specification on Get (KMIP 1.4 §2.1.6-2.1.7, KMIP 2.1 §2.1.5-2.1.6): the
Key Value served wrapped under another object of the caller's, through the service layer
(service/kmip_keys.py ``wrap``).

Wrapping Method Encrypt only. The encryption key is a keykeeper key of purpose ``wrap``
(AES_256_KWP) with Block Cipher Mode NIST Key Wrap (RFC 3394; the default) or AES Key Wrap
Padding (RFC 5649), or the public key of an RSA encryption or wrapping key with Padding
Method OAEP (SHA-256 by default; SHA-384, SHA-512). Encoding Option: TTLV Encoding (the
default: the wrapped bytes are the TTLV of the Key Value structure) or No Encoding (the
Key Material's bytes; a transparent structure cannot be so).
"""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.keyblock import enum_item
from keykeeper.kmip.objects import kmip_keys, resolve, text_item
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import encode
from keykeeper.kmip.ttlv.enums import (
    BlockCipherMode,
    EncodingOption,
    HashingAlgorithm,
    PaddingMethod,
    WrappingMethod,
)
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["wrap_key_value"]

def _mode(*names: str) -> int:
    for name in names:
        member = getattr(BlockCipherMode, name, None)
        if member is not None:
            return int(member)
    raise LookupError(names[0])


_NIST_KEY_WRAP = _mode("NISTKEYWRAP", "NIST_KEY_WRAP")
_AES_KEY_WRAP_PADDING = _mode("AESKEYWRAPPADDING", "AES_KEY_WRAP_PADDING")
_HASHES = {int(HashingAlgorithm.SHA_256): "SHA256", int(HashingAlgorithm.SHA_384): "SHA384",
           int(HashingAlgorithm.SHA_512): "SHA512"}


def _enum(item: Item | None, tag: int) -> int | None:
    found = None if item is None else item.find(tag)
    if found is None:
        return None
    if found.type is not ItemType.ENUMERATION or not isinstance(found.value, int):
        raise KmipError("Invalid_Field", "an enumeration in the Key Wrapping Specification "
                        "has the wrong type")
    return found.value


def wrap_key_value(call: Call, spec: Item, key_value: Item) -> tuple[Item, Item]:
    """(Key Value as the wrapped Byte String, Key Wrapping Data) for ``key_value`` (the
    plaintext Key Value structure) under ``spec``. KmipError(Invalid_Field) for a
    specification keykeeper cannot serve; the service's errors for the key."""
    method = _enum(spec, int(Tag.WRAPPING_METHOD))
    if method not in (None, int(WrappingMethod.ENCRYPT)):
        raise KmipError("Invalid_Field", "Wrapping Method Encrypt only (no MAC/sign)")
    if spec.find(int(Tag.MAC_SIGNATURE_KEY_INFORMATION)) is not None:
        raise KmipError("Invalid_Field", "MAC/Signature Key Information is not supported")
    info = spec.find(int(Tag.ENCRYPTION_KEY_INFORMATION))
    if info is None:
        raise KmipError("Invalid_Field", "Encryption Key Information is required")
    uid_item = info.find(int(Tag.UNIQUE_IDENTIFIER))
    if uid_item is None or not isinstance(uid_item.value, str):
        raise KmipError("Invalid_Field", "Encryption Key Information names no key")
    params = info.find(int(Tag.CRYPTOGRAPHIC_PARAMETERS))
    encoding = _enum(spec, int(Tag.ENCODING_OPTION))
    if encoding is None or encoding == EncodingOption.TTLV_ENCODING:
        data = encode(key_value)
    elif encoding == EncodingOption.NO_ENCODING:
        material = key_value.find(int(Tag.KEY_MATERIAL))
        if material is None or not isinstance(material.value, bytes):
            raise KmipError("Invalid_Field", "No Encoding wraps a Byte String Key Material "
                            "only: ask for TTLV Encoding")
        data = material.value
    else:
        raise KmipError("Invalid_Field", "unknown Encoding Option")
    wrapping = resolve(call, uid_item.value, "key.get")
    mode = _enum(params, int(Tag.BLOCK_CIPHER_MODE))
    padding = _enum(params, int(Tag.PADDING_METHOD))
    if wrapping.public or padding == PaddingMethod.OAEP:
        if padding not in (None, int(PaddingMethod.OAEP)):
            raise KmipError("Invalid_Field", "an RSA key wraps with Padding Method OAEP")
        digest = _enum(params, int(Tag.HASHING_ALGORITHM))
        hash_name = "SHA256" if digest is None else _HASHES.get(digest)
        if hash_name is None:
            raise KmipError("Invalid_Field", "RSA-OAEP wrapping uses SHA-256, SHA-384 or "
                            "SHA-512 (SHA-1 is refused: NIST SP 800-131A Rev 2)")
        how = "rsa_oaep"
    elif mode in (None, _NIST_KEY_WRAP):
        how, hash_name = "nist_key_wrap", "SHA256"
    elif mode == _AES_KEY_WRAP_PADDING:
        how, hash_name = "aes_key_wrap_padding", "SHA256"
    else:
        raise KmipError("Invalid_Field", "an AES key wraps with NIST Key Wrap (RFC 3394) or "
                        "AES Key Wrap Padding (RFC 5649)")
    wrapped = kmip_keys(call).wrap(call.ctx, wrapping.key.id, wrapping.version.version, data,
                                   method=how, hash_name=hash_name)
    info_children = [text_item(int(Tag.UNIQUE_IDENTIFIER), wrapping.uid)]
    if params is not None:
        info_children.append(params)
    wrapping_data = [enum_item(int(Tag.WRAPPING_METHOD), int(WrappingMethod.ENCRYPT)),
                     Item.structure(int(Tag.ENCRYPTION_KEY_INFORMATION), info_children)]
    if encoding is not None:
        wrapping_data.append(enum_item(int(Tag.ENCODING_OPTION), encoding))
    return (Item(int(Tag.KEY_VALUE), ItemType.BYTE_STRING, wrapped),
            Item.structure(int(Tag.KEY_WRAPPING_DATA), wrapping_data))
