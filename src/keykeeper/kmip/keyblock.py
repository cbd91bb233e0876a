"""Key material <-> KMIP Key Block (KMIP 1.4 §2.1.3-2.1.7, KMIP 2.1 §2.1.3-2.1.7), with
Key Format Type conversion (pyca/cryptography does every parse and serialisation).

keykeeper stores raw bytes for secret keys, PKCS#8 DER for private keys and SPKI for
public keys (crypto/handles.py). Formats served and accepted:

=========================  =============================================================
object                     Key Format Types
=========================  =============================================================
Symmetric Key              Raw (default), Transparent Symmetric Key
Private Key                PKCS#1 (RSA; the default for RSA), PKCS#8 (the default for
                           others), Transparent RSA Private Key, Transparent EC Private
                           Key (also Transparent ECDSA Private Key before KMIP 1.3)
Public Key                 X.509 (SubjectPublicKeyInfo; the default for EC), PKCS#1 (RSA;
                           the default for RSA), Transparent RSA Public Key, Transparent
                           EC Public Key, Raw (Ed25519)
=========================  =============================================================

Anything else is ``Key_Format_Type_Not_Supported``.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keykeeper.kmip.call import KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import KeyFormatType, ObjectType, RecommendedCurve
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.kmip_keys import Material

__all__ = [
    "OBJECT_TAGS",
    "bytes_of",
    "default_format",
    "encode_material",
    "enum_item",
    "int_item",
    "key_block",
    "parse_key_block",
]

F = KeyFormatType
OBJECT_TAGS: dict[ObjectType, int] = {
    ObjectType.SYMMETRIC_KEY: int(Tag.SYMMETRIC_KEY),
    ObjectType.PRIVATE_KEY: int(Tag.PRIVATE_KEY),
    ObjectType.PUBLIC_KEY: int(Tag.PUBLIC_KEY),
}
_CURVES: tuple[tuple[str, type[ec.EllipticCurve]], ...] = (
    ("P_256", ec.SECP256R1), ("P_384", ec.SECP384R1), ("P_521", ec.SECP521R1))
_RSA_PRIVATE = ("MODULUS", "PRIVATE_EXPONENT", "PUBLIC_EXPONENT", "P", "Q",
                "PRIME_EXPONENT_P", "PRIME_EXPONENT_Q", "CRT_COEFFICIENT")


def _fmt(name: str) -> int | None:
    member = getattr(KeyFormatType, name, None)
    return None if member is None else int(member)


def _fmts(*names: str) -> frozenset[int]:
    return frozenset(v for v in (_fmt(n) for n in names) if v is not None)


_T_SYM = _fmts("TRANSPARENT_SYMMETRIC_KEY")
_T_RSA_PRIV = _fmts("TRANSPARENT_RSA_PRIVATE_KEY")
_T_RSA_PUB = _fmts("TRANSPARENT_RSA_PUBLIC_KEY")
_T_EC_PRIV = _fmts("TRANSPARENT_EC_PRIVATE_KEY", "TRANSPARENT_ECDSA_PRIVATE_KEY")
_T_EC_PUB = _fmts("TRANSPARENT_EC_PUBLIC_KEY", "TRANSPARENT_ECDSA_PUBLIC_KEY")


def enum_item(tag: int, value: int) -> Item:
    return Item(tag, ItemType.ENUMERATION, int(value))


def int_item(tag: int, value: int) -> Item:
    return Item(tag, ItemType.INTEGER, int(value))


def _bytes_item(tag: int, value: bytes) -> Item:
    return Item(tag, ItemType.BYTE_STRING, value)


def _big(name: str, value: int) -> Item:
    return Item(int(getattr(Tag, name)), ItemType.BIG_INTEGER, value)


def _unsupported(fmt: int, what: str) -> KmipError:
    try:
        shown = KeyFormatType(fmt).name
    except ValueError:
        shown = f"{fmt:#x}"
    return KmipError("Key_Format_Type_Not_Supported",
                     f"Key Format Type {shown} is not offered for {what}")


def default_format(object_type: ObjectType, algorithm_family: str) -> int:
    """The Key Format Type a Get answers in when the request names none."""
    if object_type == ObjectType.SYMMETRIC_KEY:
        return int(F.RAW)
    if algorithm_family.startswith("rsa"):
        return int(F.PKCS_1)
    if algorithm_family == "ed25519" and object_type == ObjectType.PUBLIC_KEY:
        return int(F.RAW)
    return int(F.PKCS_8) if object_type == ObjectType.PRIVATE_KEY else int(F.X_509)


def _curve_value(curve: ec.EllipticCurve) -> int:
    for name, cls in _CURVES:
        if isinstance(curve, cls):
            return int(getattr(RecommendedCurve, name))
    raise KmipError("Key_Format_Type_Not_Supported", "the key's curve has no KMIP name")


def _curve_of(value: object) -> ec.EllipticCurve:
    for name, cls in _CURVES:
        if value == int(getattr(RecommendedCurve, name)):
            return cls()
    raise KmipError("Invalid_Field", "Recommended Curve must be P-256, P-384 or P-521")


def encode_material(object_type: ObjectType, stored: bytes, fmt: int) -> Item:
    """The Key Material item for ``stored`` (raw key, PKCS#8 DER or SPKI DER, by
    ``object_type``) in Key Format Type ``fmt``; Key_Format_Type_Not_Supported for a
    format this object cannot take."""
    tag = int(Tag.KEY_MATERIAL)
    if object_type == ObjectType.SYMMETRIC_KEY:
        if fmt == F.RAW:
            return _bytes_item(tag, stored)
        if fmt in _T_SYM:
            return Item.structure(tag, [_bytes_item(int(Tag.KEY), stored)])
        raise _unsupported(fmt, "a symmetric key")
    if object_type == ObjectType.PRIVATE_KEY:
        private = ser.load_der_private_key(stored, password=None)
        if fmt == F.PKCS_8:
            return _bytes_item(tag, stored)
        if isinstance(private, rsa.RSAPrivateKey):
            if fmt == F.PKCS_1:
                return _bytes_item(tag, private.private_bytes(
                    ser.Encoding.DER, ser.PrivateFormat.TraditionalOpenSSL,
                    ser.NoEncryption()))
            if fmt in _T_RSA_PRIV:
                n = private.private_numbers()
                values = (n.public_numbers.n, n.d, n.public_numbers.e, n.p, n.q, n.dmp1,
                          n.dmq1, n.iqmp)
                return Item.structure(tag, [_big(name, v) for name, v in
                                            zip(_RSA_PRIVATE, values, strict=True)])
        if isinstance(private, ec.EllipticCurvePrivateKey) and fmt in _T_EC_PRIV:
            return Item.structure(tag, [
                enum_item(int(Tag.RECOMMENDED_CURVE), _curve_value(private.curve)),
                _big("D", private.private_numbers().private_value)])
        raise _unsupported(fmt, "this private key")
    public = ser.load_der_public_key(stored)
    if fmt == F.X_509:
        return _bytes_item(tag, stored)
    if isinstance(public, rsa.RSAPublicKey):
        if fmt == F.PKCS_1:
            return _bytes_item(tag, public.public_bytes(ser.Encoding.DER,
                                                        ser.PublicFormat.PKCS1))
        if fmt in _T_RSA_PUB:
            pn = public.public_numbers()
            return Item.structure(tag, [_big("MODULUS", pn.n), _big("PUBLIC_EXPONENT", pn.e)])
    if isinstance(public, ec.EllipticCurvePublicKey) and fmt in _T_EC_PUB:
        point = public.public_bytes(ser.Encoding.X962, ser.PublicFormat.UncompressedPoint)
        return Item.structure(tag, [
            enum_item(int(Tag.RECOMMENDED_CURVE), _curve_value(public.curve)),
            _bytes_item(int(Tag.Q_STRING), point)])
    if isinstance(public, ed25519.Ed25519PublicKey) and fmt == F.RAW:
        return _bytes_item(tag, public.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw))
    raise _unsupported(fmt, "this public key")


def key_block(fmt: int, key_value: Item, algorithm: int | None, length: int | None,
              wrapping_data: Item | None = None) -> Item:
    """A Key Block: Key Format Type, Key Value (a structure holding Key Material, or the
    wrapped bytes), Cryptographic Algorithm and Length, Key Wrapping Data."""
    children = [enum_item(int(Tag.KEY_FORMAT_TYPE), fmt), key_value]
    if algorithm is not None:
        children.append(enum_item(int(Tag.CRYPTOGRAPHIC_ALGORITHM), algorithm))
    if length is not None:
        children.append(int_item(int(Tag.CRYPTOGRAPHIC_LENGTH), length))
    if wrapping_data is not None:
        children.append(wrapping_data)
    return Item.structure(int(Tag.KEY_BLOCK), children)


# -- parsing what a client registers ----------------------------------------------------------

def _int_of(item: Item | None, what: str) -> int:
    if item is None or isinstance(item.value, bool) or not isinstance(item.value, int):
        raise KmipError("Invalid_Field", f"{what} is missing or not an integer")
    return item.value


def bytes_of(item: Item | None, what: str) -> bytes:
    """The Byte String value of ``item``; Invalid_Field naming ``what`` otherwise."""
    if item is None or not isinstance(item.value, bytes):
        raise KmipError("Invalid_Field", f"{what} is missing or not a Byte String")
    return item.value


def _transparent(object_type: ObjectType, fmt: int, material: Item) -> Material:
    """A transparent Key Material structure as the keyio import format it maps to."""
    def big(name: str) -> int:
        return _int_of(material.find(int(getattr(Tag, name))), name.replace("_", " ").title())

    try:
        if object_type == ObjectType.SYMMETRIC_KEY and fmt in _T_SYM:
            return Material("raw", bytes_of(material.find(int(Tag.KEY)), "Key"))
        if object_type == ObjectType.PRIVATE_KEY and fmt in _T_RSA_PRIV:
            pub = rsa.RSAPublicNumbers(big("PUBLIC_EXPONENT"), big("MODULUS"))
            p, q, d = big("P"), big("Q"), big("PRIVATE_EXPONENT")
            numbers = rsa.RSAPrivateNumbers(
                p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                rsa.rsa_crt_iqmp(p, q), pub)
            return Material("pkcs8", _pkcs8(numbers.private_key()))
        if object_type == ObjectType.PRIVATE_KEY and fmt in _T_EC_PRIV:
            curve = _curve_of(_int_of(material.find(int(Tag.RECOMMENDED_CURVE)),
                                      "Recommended Curve"))
            return Material("pkcs8", _pkcs8(ec.derive_private_key(big("D"), curve)))
        if object_type == ObjectType.PUBLIC_KEY and fmt in _T_RSA_PUB:
            key = rsa.RSAPublicNumbers(big("PUBLIC_EXPONENT"), big("MODULUS")).public_key()
            return Material("spki", _spki(key))
        if object_type == ObjectType.PUBLIC_KEY and fmt in _T_EC_PUB:
            curve = _curve_of(_int_of(material.find(int(Tag.RECOMMENDED_CURVE)),
                                      "Recommended Curve"))
            point = bytes_of(material.find(int(Tag.Q_STRING)), "Q String")
            return Material("spki", _spki(ec.EllipticCurvePublicKey.from_encoded_point(
                curve, point)))
    except (ValueError, OverflowError, ZeroDivisionError):
        # pyca refuses bad numbers with ValueError, and negative ones with OverflowError.
        raise KmipError("Invalid_Field", "the transparent key material is not a valid "
                        "key") from None
    raise _unsupported(fmt, "this object")


def _pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption())


def _spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
          ) -> bytes:
    return key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


def read_key_block(managed: Item, what: str, contents: str) -> tuple[Item, int, Item]:
    """``(Key Block, Key Format Type, Key Value)`` of a registered ``what`` (a managed
    object holding a Key Block). Invalid_Field for a missing Key Block, a wrapped one
    (``contents`` are registered in clear) or a Key Value that is not a Structure."""
    block = managed.find(int(Tag.KEY_BLOCK))
    if block is None or block.type is not ItemType.STRUCTURE:
        raise KmipError("Invalid_Field", f"the {what} has no Key Block")
    fmt = _int_of(block.find(int(Tag.KEY_FORMAT_TYPE)), "Key Format Type")
    if block.find(int(Tag.KEY_WRAPPING_DATA)) is not None:
        raise KmipError("Invalid_Field", f"wrapped {contents} cannot be registered: "
                        "register it in clear (over this TLS connection)")
    value = block.find(int(Tag.KEY_VALUE))
    if value is None or value.type is not ItemType.STRUCTURE:
        raise KmipError("Invalid_Field", "the Key Block has no Key Value structure")
    return block, fmt, value


def parse_key_block(object_type: ObjectType, managed: Item
                    ) -> tuple[Material, int | None, int | None]:
    """(material as a keyio import format, Cryptographic Algorithm or None, Cryptographic
    Length or None) of a registered managed object (Symmetric Key, Private Key or Public
    Key holding a Key Block). Wrapped material is refused (Invalid_Field); a format
    keykeeper cannot take is Key_Format_Type_Not_Supported."""
    block, fmt, value = read_key_block(managed, "managed object", "key material")
    material = value.find(int(Tag.KEY_MATERIAL))
    if material is None:
        raise KmipError("Invalid_Field", "the Key Value has no Key Material")
    alg_item = block.find(int(Tag.CRYPTOGRAPHIC_ALGORITHM))
    len_item = block.find(int(Tag.CRYPTOGRAPHIC_LENGTH))
    alg = _int_of(alg_item, "Cryptographic Algorithm") if alg_item is not None else None
    length = _int_of(len_item, "Cryptographic Length") if len_item is not None else None
    if material.type is ItemType.STRUCTURE:
        return _transparent(object_type, fmt, material), alg, length
    data = bytes_of(material, "Key Material")
    if object_type == ObjectType.SYMMETRIC_KEY and fmt == F.RAW:
        return Material("raw", data), alg, length
    if object_type == ObjectType.PRIVATE_KEY and fmt in (F.PKCS_8, F.PKCS_1):
        return Material("pkcs8" if fmt == F.PKCS_8 else "pkcs1", data), alg, length
    if object_type == ObjectType.PUBLIC_KEY and fmt in (F.X_509, F.PKCS_1):
        if fmt == F.PKCS_1:
            try:
                data = _spki(ser.load_der_public_key(data))  # type: ignore[arg-type]
            except (ValueError, TypeError):
                raise KmipError("Invalid_Field", "the Key Material is not a PKCS#1 "
                                "RSAPublicKey") from None
        return Material("spki", data), alg, length
    if object_type == ObjectType.PUBLIC_KEY and fmt == F.RAW:
        try:
            return Material("spki", _spki(ed25519.Ed25519PublicKey.from_public_bytes(data))), \
                alg, length
        except ValueError:
            raise KmipError("Invalid_Field", "a Raw public key is a 32-byte Ed25519 "
                            "key here") from None
    raise _unsupported(fmt, "this object")


def material_description(material: Material) -> tuple[int, int] | None:
    """(Cryptographic Algorithm, Cryptographic Length) a registered material shows by
    itself: a symmetric key's length only is known (None here), an RSA key its modulus
    size, an EC key its curve, an Ed25519 key itself. Invalid_Field for material that does
    not load, or an RSA key whose modulus is even."""
    from keykeeper.kmip.ttlv.enums import CryptographicAlgorithm as A
    try:
        if material.format in ("pkcs8", "pkcs1"):
            key: object = ser.load_der_private_key(material.data, password=None)
        elif material.format == "spki":
            key = ser.load_der_public_key(material.data)
        else:
            return None
    except (ValueError, TypeError):
        raise KmipError("Invalid_Field", "the key material is not a valid key in its "
                        "Key Format Type") from None
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        if public.public_numbers().n % 2 == 0:  # a product of two odd primes is odd
            raise KmipError("Invalid_Field", "the key material is not a valid RSA key "
                            "(even modulus)")
        return int(A.RSA), key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return int(A.EC), key.curve.key_size
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return int(A.ED25519), 255
    raise KmipError("Invalid_Field", "keykeeper registers RSA, EC and Ed25519 asymmetric keys")
