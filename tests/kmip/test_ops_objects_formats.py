"""KMIP Register in each Key Format Type, and Get of the registered material back in
each format with byte equality; Get with a Key Wrapping Specification (AES key wrap,
RFC 3394 / 5649, and RSA-OAEP). In-process over a real store (tests/kmip/objects_support.py).
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from keykeeper.domain.states import KeyState
from keykeeper.errors import FailedPrecondition, KeykeeperError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import decode
from keykeeper.kmip.ttlv.enums import (
    BlockCipherMode,
    EncodingOption,
    ObjectType,
    Operation,
    PaddingMethod,
    RecommendedCurve,
    WrappingMethod,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import (
    A,
    F,
    Kmip,
    U,
    alg,
    enum,
    key_block,
    kmip_fixture,  # noqa: F401  (the fixture "kmip")
    length,
    mask,
    material,
    reason_of,
    struct,
    template,
    text,
    uid_of,
)


def _register(kmip: Kmip, otype: ObjectType, fmt: int, key_material: Item,
              algorithm: int | None, bits: int | None, usage: int) -> str:
    block = [enum(Tag.KEY_FORMAT_TYPE, fmt), struct(Tag.KEY_VALUE, key_material)]
    if algorithm is not None:
        block.append(alg(algorithm))
    if bits is not None:
        block.append(length(bits))
    tag = {ObjectType.SYMMETRIC_KEY: Tag.SYMMETRIC_KEY, ObjectType.PRIVATE_KEY: Tag.PRIVATE_KEY,
           ObjectType.PUBLIC_KEY: Tag.PUBLIC_KEY}[otype]
    out = kmip(Operation.REGISTER, enum(Tag.OBJECT_TYPE, otype),
               template(kmip.version, Cryptographic_Usage_Mask=mask(usage)),
               struct(tag, struct(Tag.KEY_BLOCK, *block)))
    return uid_of(out)


def _bytes(tag: int, data: bytes) -> Item:
    return Item(int(tag), ItemType.BYTE_STRING, data)


def test_register_symmetric_raw_and_transparent(kmip: Kmip) -> None:
    secret = os.urandom(32)
    uid = _register(kmip, ObjectType.SYMMETRIC_KEY, F.RAW, _bytes(Tag.KEY_MATERIAL, secret),
                    A.AES, 256, int(U.ENCRYPT | U.DECRYPT))
    key = kmip.key(uid)
    assert key.origin == "external" and key.algorithm == "AES_256_GCM"
    assert key.state == KeyState.PRE_ACTIVE
    assert material(kmip.get(uid)).value == secret
    other = os.urandom(32)
    uid2 = _register(kmip, ObjectType.SYMMETRIC_KEY, F.TRANSPARENT_SYMMETRIC_KEY,
                     struct(Tag.KEY_MATERIAL, _bytes(Tag.KEY, other)), A.HMAC_SHA256, None,
                     int(U.MAC_GENERATE | U.MAC_VERIFY))
    assert kmip.key(uid2).algorithm == "HMAC_SHA256"
    # no Key Format Type asked: the registered one (OASIS BL-M-3-21)
    assert material(kmip.get(uid2)).find(int(Tag.KEY)).value == other  # type: ignore[union-attr]
    assert material(kmip.get(uid2, F.RAW)).value == other
    with pytest.raises(KeykeeperError) as short:
        _register(kmip, ObjectType.SYMMETRIC_KEY, F.RAW, _bytes(Tag.KEY_MATERIAL, b"x" * 20),
                  A.AES, None, int(U.ENCRYPT))
    assert reason_of(short.value) == "Invalid_Field"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 3072)


def test_register_rsa_private_and_public_in_each_format(kmip: Kmip,
                                                        rsa_key: rsa.RSAPrivateKey) -> None:
    der = serialization.Encoding.DER
    pkcs1 = rsa_key.private_bytes(der, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())
    pkcs8 = rsa_key.private_bytes(der, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    public = rsa_key.public_key()
    spki = public.public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs1_public = public.public_bytes(der, serialization.PublicFormat.PKCS1)

    uid = _register(kmip, ObjectType.PRIVATE_KEY, F.PKCS_1, _bytes(Tag.KEY_MATERIAL, pkcs1),
                    A.RSA, 3072, int(U.SIGN))
    assert kmip.key(uid).algorithm == "RSA_PSS_3072_SHA256"
    assert material(kmip.get(uid)).value == pkcs1          # default for RSA: PKCS#1
    assert material(kmip.get(uid, F.PKCS_1)).value == pkcs1
    assert material(kmip.get(uid, F.PKCS_8)).value == pkcs8
    t = material(kmip.get(uid, F.TRANSPARENT_RSA_PRIVATE_KEY))
    assert t.find(int(Tag.MODULUS)).value == public.public_numbers().n  # type: ignore[union-attr]
    assert t.find(int(Tag.PRIVATE_EXPONENT)).value == rsa_key.private_numbers().d  # type: ignore[union-attr]
    # its public half, served from the registered private key
    assert material(kmip.get(uid + "/public", F.X_509)).value == spki

    uid8 = _register(kmip, ObjectType.PRIVATE_KEY, F.PKCS_8, _bytes(Tag.KEY_MATERIAL, pkcs8),
                     A.RSA, 3072, int(U.DECRYPT))
    assert kmip.key(uid8).algorithm == "RSA_OAEP_3072_SHA256"
    assert material(kmip.get(uid8, F.PKCS_8)).value == pkcs8

    for fmt, data in ((F.X_509, spki), (F.PKCS_1, pkcs1_public)):
        pub_uid = _register(kmip, ObjectType.PUBLIC_KEY, fmt, _bytes(Tag.KEY_MATERIAL, data),
                            A.RSA, 3072, int(U.VERIFY))
        assert pub_uid.endswith("/1/public")
        key = kmip.key(pub_uid)
        assert key.versions[0].public_only
        got = kmip.get(pub_uid)
        assert got.find(int(Tag.OBJECT_TYPE)).value == ObjectType.PUBLIC_KEY  # type: ignore[union-attr]
        assert material(got).value == data       # no format asked: the registered one
        assert material(kmip.get(pub_uid, F.X_509)).value == spki
        assert material(kmip.get(pub_uid, fmt)).value == data
        t_pub = material(kmip.get(pub_uid, F.TRANSPARENT_RSA_PUBLIC_KEY))
        assert t_pub.find(int(Tag.PUBLIC_EXPONENT)).value == 65537  # type: ignore[union-attr]


def test_register_transparent_ec_keys(kmip: Kmip) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    d = Item(int(Tag.D), ItemType.BIG_INTEGER, private.private_numbers().private_value)
    uid = _register(kmip, ObjectType.PRIVATE_KEY, F.TRANSPARENT_EC_PRIVATE_KEY,
                    struct(Tag.KEY_MATERIAL, enum(Tag.RECOMMENDED_CURVE, RecommendedCurve.P_256),
                           d), A.EC, 256, int(U.SIGN))
    assert kmip.key(uid).algorithm == "ECDSA_P256_SHA256"
    pkcs8 = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    assert material(kmip.get(uid, F.PKCS_8)).value == pkcs8
    point = private.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    pub = _register(kmip, ObjectType.PUBLIC_KEY, F.TRANSPARENT_EC_PUBLIC_KEY,
                    struct(Tag.KEY_MATERIAL, enum(Tag.RECOMMENDED_CURVE, RecommendedCurve.P_256),
                           _bytes(Tag.Q_STRING, point)), A.EC, 256, int(U.VERIFY))
    assert material(kmip.get(pub, F.TRANSPARENT_EC_PUBLIC_KEY)).find(  # type: ignore[union-attr]
        int(Tag.Q_STRING)).value == point


# -- wrapping --------------------------------------------------------------------------------
def test_get_wrapped_under_aes_and_rsa(kmip: Kmip, rsa_key: rsa.RSAPrivateKey) -> None:
    target = kmip.create_aes(256)
    plain = material(kmip.get(target)).value
    assert isinstance(plain, bytes)
    wrapper = kmip.create_aes(256, usage=int(U.WRAP_KEY | U.UNWRAP_KEY))
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, wrapper))
    kek = material(kmip.get(wrapper)).value
    assert isinstance(kek, bytes)

    def spec(uid: str, *params: Item,
             encoding: int | None = int(EncodingOption.NO_ENCODING)) -> Item:
        info = [text(Tag.UNIQUE_IDENTIFIER, uid)]
        if params:
            info.append(struct(Tag.CRYPTOGRAPHIC_PARAMETERS, *params))
        children = [enum(Tag.WRAPPING_METHOD, WrappingMethod.ENCRYPT),
                    struct(Tag.ENCRYPTION_KEY_INFORMATION, *info)]
        if encoding is not None:
            children.append(enum(Tag.ENCODING_OPTION, encoding))
        return struct(Tag.KEY_WRAPPING_SPECIFICATION, *children)

    got = kmip.get(target, None, spec(wrapper, enum(Tag.BLOCK_CIPHER_MODE,
                                                    BlockCipherMode.NISTKEYWRAP)))
    block = key_block(got)
    wrapped = block.find(int(Tag.KEY_VALUE))
    assert wrapped is not None and isinstance(wrapped.value, bytes)
    assert keywrap.aes_key_unwrap(kek, wrapped.value) == plain
    assert block.find(int(Tag.KEY_WRAPPING_DATA)) is not None
    padded = key_block(kmip.get(target, None, spec(
        wrapper, enum(Tag.BLOCK_CIPHER_MODE, BlockCipherMode.AESKEYWRAPPADDING))))
    value = padded.find(int(Tag.KEY_VALUE)).value  # type: ignore[union-attr]
    assert isinstance(value, bytes)
    assert keywrap.aes_key_unwrap_with_padding(kek, value) == plain
    # TTLV encoding (the default): the wrapped bytes are the Key Value's TTLV
    ttlv = key_block(kmip.get(target, None, spec(wrapper, encoding=None)))
    inner = decode(keywrap.aes_key_unwrap(kek, ttlv.find(int(Tag.KEY_VALUE)).value))  # type: ignore[arg-type, union-attr]
    assert inner.tag == Tag.KEY_VALUE
    assert inner.find(int(Tag.KEY_MATERIAL)).value == plain  # type: ignore[union-attr]

    # RSA-OAEP under the public key of an encryption key pair registered here
    pkcs8 = rsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    rsa_uid = _register(kmip, ObjectType.PRIVATE_KEY, F.PKCS_8, _bytes(Tag.KEY_MATERIAL, pkcs8),
                        A.RSA, 3072, int(U.DECRYPT))
    kmip(Operation.ACTIVATE, text(Tag.UNIQUE_IDENTIFIER, rsa_uid))
    oaep = key_block(kmip.get(target, None, spec(rsa_uid + "/public",
                                                 enum(Tag.PADDING_METHOD, PaddingMethod.OAEP))))
    blob = oaep.find(int(Tag.KEY_VALUE)).value  # type: ignore[union-attr]
    assert isinstance(blob, bytes)
    assert rsa_key.decrypt(blob, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(),
                                              None)) == plain
    # an encryption key cannot wrap; a pre-active wrap key neither
    with pytest.raises(KeykeeperError):
        kmip.get(target, None, spec(target))
    idle = kmip.create_aes(256, usage=int(U.WRAP_KEY | U.UNWRAP_KEY))
    with pytest.raises(FailedPrecondition):
        kmip.get(target, None, spec(idle))


