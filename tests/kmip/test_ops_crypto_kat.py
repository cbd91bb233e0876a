"""KMIP cryptographic operations with known answers: keys Registered with the KMIP profile
vectors' material (AES-GCM, AES-CBC with stored Cryptographic Parameters, ChaCha20, RSA-OAEP),
the dates and Usage Limits stored with an object, and the Cryptographic Parameters parser."""


from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import keykeeper.kmip.ops  # noqa: F401  (the dispatch table first: its modules import helpers)
from keykeeper.crypto.raw_params import RawParams
from keykeeper.kmip.call import KmipError
from keykeeper.kmip.crypto_params import parse_params
from keykeeper.kmip.ops import OPERATIONS
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    KeyFormatType,
    MaskGenerator,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    UsageLimitsUnit,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer
from tests.kmip.crypto_helpers import T, b, call, enum, failed, field, params, register

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "kmip" / "v2.1"


needs_register = pytest.mark.skipif(int(Operation.REGISTER) not in OPERATIONS,
                                    reason="Register is not served yet")
_ED = int(CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT)


@needs_register
def test_known_answers_aes_gcm_cbc_and_stored_params(kmip_server: KmipServer) -> None:
    uid = register(kmip_server, ObjectType.SYMMETRIC_KEY, KeyFormatType.RAW, bytes(16),
                   CryptographicAlgorithm.AES, 128, _ED)
    # McGrew-Viega GCM test case 2 (CS-BC-M-GCM-1): 12-byte zero IV, 16 zero bytes.
    enc = call(kmip_server, Operation.ENCRYPT, uid, params(mode=BlockCipherMode.GCM),
               b(Tag.DATA, bytes(16)), b(Tag.IV_COUNTER_NONCE, bytes(12)))
    assert field(enc, Tag.DATA) == bytes.fromhex("0388dace60b6a392f328c2b971b2fe78")
    assert field(enc, Tag.AUTHENTICATED_ENCRYPTION_TAG) == bytes.fromhex(
        "ab6e47d42cec13bdf53a67b21257bddf")
    # CBC defaults stored with the object (CS-BC-M-13): the request names no parameters.
    stored = params(mode=BlockCipherMode.CBC, padding=PaddingMethod.PKCS5)
    key = bytes.fromhex("0123456789abcdef0123456789abcdef")
    uid2 = register(kmip_server, ObjectType.SYMMETRIC_KEY, KeyFormatType.RAW, key,
                    CryptographicAlgorithm.AES, 128, _ED, stored)
    iv = bytes(16)
    enc2 = call(kmip_server, Operation.ENCRYPT, uid2, b(Tag.DATA, b"sixteen bytes!!!"),
                b(Tag.IV_COUNTER_NONCE, iv))
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(b"sixteen bytes!!!") + padder.finalize()
    want = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(padded)
    assert field(enc2, Tag.DATA) == want


@needs_register
def test_known_answer_chacha20_rfc8439(kmip_server: KmipServer) -> None:
    uid = register(kmip_server, ObjectType.SYMMETRIC_KEY, KeyFormatType.RAW, bytes(32),
                   CryptographicAlgorithm.CHACHA20, 256, _ED)
    enc = call(kmip_server, Operation.ENCRYPT, uid, params(), b(Tag.DATA, bytes(64)),
               b(Tag.IV_COUNTER_NONCE, bytes(8)))
    assert field(enc, Tag.DATA)[:16] == bytes.fromhex("76b8e0ada0f13d90405d6ae55386bd28")


@needs_register
@pytest.mark.skipif(not VECTORS.is_dir(), reason="no KMIP vectors")
def test_known_answer_rsa_oaep_decrypt_profile_vector(kmip_server: KmipServer) -> None:
    # CS-AC-M-OAEP-2-21: a PKCS#1 RSA-2048 private key, OAEP SHA-256 / MGF1 SHA-256.
    text = (VECTORS / "XML" / "mandatory" / "CS-AC-M-OAEP-2-21.xml").read_text()
    material = bytes.fromhex(re.findall(r'<KeyMaterial type="ByteString" value="([0-9a-f]+)"',
                                        text)[0])
    datas = re.findall(r'<Data type="ByteString" value="([0-9a-f]+)"', text)
    uid = register(kmip_server, ObjectType.PRIVATE_KEY, KeyFormatType.PKCS_1, material,
                   CryptographicAlgorithm.RSA, 2048, int(CryptographicUsageMask.DECRYPT))
    p = params(padding=PaddingMethod.OAEP, hash=HashingAlgorithm.SHA_256,
               mgf_hash=HashingAlgorithm.SHA_256)
    dec = call(kmip_server, Operation.DECRYPT, uid, p, b(Tag.DATA, bytes.fromhex(datas[0])))
    assert field(dec, Tag.DATA) == bytes.fromhex(datas[1])


@needs_register
def test_dates_stored_with_the_object_are_enforced(kmip_server: KmipServer) -> None:
    # CS-BC-M-14: Protect Stop Date passed, Process Start Date not yet come.
    now = int(time.time())
    attrs = [Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, T.INTEGER, _ED),
             Item(Tag.ACTIVATION_DATE, T.DATE_TIME, now - 3600),
             Item(Tag.PROCESS_START_DATE, T.DATE_TIME, now + 3600),
             Item(Tag.PROTECT_STOP_DATE, T.DATE_TIME, now - 3600)]
    block = Item.structure(Tag.KEY_BLOCK, [
        enum(Tag.KEY_FORMAT_TYPE, KeyFormatType.RAW),
        Item.structure(Tag.KEY_VALUE, [b(Tag.KEY_MATERIAL, secrets.token_bytes(16))]),
        enum(Tag.CRYPTOGRAPHIC_ALGORITHM, CryptographicAlgorithm.AES),
        Item(Tag.CRYPTOGRAPHIC_LENGTH, T.INTEGER, 128)])
    r = call(kmip_server, Operation.REGISTER, None,
             enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
             Item.structure(Tag.ATTRIBUTES, attrs),
             Item.structure(Tag.SYMMETRIC_KEY, [block]))
    uid = field(r, Tag.UNIQUE_IDENTIFIER)
    ecb = params(mode=BlockCipherMode.ECB)
    failed(call(kmip_server, Operation.ENCRYPT, uid, ecb, b(Tag.DATA, bytes(16))),
           ResultReason.WRONG_KEY_LIFECYCLE_STATE)
    failed(call(kmip_server, Operation.DECRYPT, uid, ecb, b(Tag.DATA, bytes(16))),
           ResultReason.WRONG_KEY_LIFECYCLE_STATE)


@needs_register
def test_usage_limits_in_bytes(kmip_server: KmipServer) -> None:
    # CS-BC-M-7: 16 bytes allowed; the second 16-byte Encrypt is refused.
    limits = Item.structure(Tag.USAGE_LIMITS, [
        Item(Tag.USAGE_LIMITS_TOTAL, T.LONG_INTEGER, 16),
        enum(Tag.USAGE_LIMITS_UNIT, UsageLimitsUnit.BYTE)])
    uid = register(kmip_server, ObjectType.SYMMETRIC_KEY, KeyFormatType.RAW,
                   secrets.token_bytes(16), CryptographicAlgorithm.AES, 128, _ED, limits)
    ecb = params(mode=BlockCipherMode.ECB)
    assert field(call(kmip_server, Operation.ENCRYPT, uid, ecb, b(Tag.DATA, bytes(16))),
                 Tag.DATA)
    failed(call(kmip_server, Operation.ENCRYPT, uid, ecb, b(Tag.DATA, bytes(16))),
           ResultReason.PERMISSION_DENIED)
    # Decrypt is not limited.
    assert field(call(kmip_server, Operation.DECRYPT, uid, ecb, b(Tag.DATA, bytes(16))),
                 Tag.DATA) is not None


def test_parse_params_names_and_defaults() -> None:
    p = parse_params(Item.structure(Tag.CRYPTOGRAPHIC_PARAMETERS, [
        enum(Tag.DIGITAL_SIGNATURE_ALGORITHM, DigitalSignatureAlgorithm.ECDSA_WITH_SHA384),
        Item(Tag.SALT_LENGTH, T.INTEGER, 20), Item(Tag.RANDOM_IV, T.BOOLEAN, True),
        b(Tag.P_SOURCE, b"L"), enum(Tag.MASK_GENERATOR, MaskGenerator.MGF1)]))
    assert (p.algorithm, p.hash, p.salt_length, p.random_iv, p.label, p.mask_generator) == (
        "ECDSA", "SHA384", 20, True, b"L", "MGF1")
    rsa_sig = parse_params(Item.structure(Tag.CRYPTOGRAPHIC_PARAMETERS, [
        enum(Tag.DIGITAL_SIGNATURE_ALGORITHM,
             DigitalSignatureAlgorithm.SHA_256_WITH_RSA_ENCRYPTION),
        enum(Tag.HASHING_ALGORITHM, HashingAlgorithm.SHA_512)]))
    # The structure's own Hashing Algorithm wins over the one the signature name implies.
    assert (rsa_sig.algorithm, rsa_sig.padding, rsa_sig.hash) == ("RSA", "PKCS1_V1_5", "SHA512")
    hmac_p = parse_params(params(algorithm=CryptographicAlgorithm.HMAC_SHA384))
    assert (hmac_p.algorithm, hmac_p.hash) == ("HMAC", "SHA384")
    sha3 = parse_params(params(hash=HashingAlgorithm.SHA3_256))
    assert sha3.hash == "SHA3_256"
    assert parse_params(None) == RawParams()
    bad = Item.structure(Tag.CRYPTOGRAPHIC_PARAMETERS, [enum(Tag.BLOCK_CIPHER_MODE, 0x7777)])
    with pytest.raises(KmipError) as exc:
        parse_params(bad)
    assert exc.value.kmip_reason == "Invalid_Field"
