"""KMIP Encrypt, Decrypt, Sign, Signature Verify, MAC and MAC Verify against a real server
(tests/kmip/conftest.py): keys made over REST (one key store), every raw mode round trip,
signatures checked with the public key REST serves, the uniform decryption failure, the
refusals (purpose, PKCS#1 v1.5 decryption, 3DES, a missing IV, block-cipher oracles for a
one-way grant), multi-part streams, the key's state and the audit trail. Known answers
through Register: test_ops_crypto_kat.py."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import keykeeper.kmip.ops  # noqa: F401  (the dispatch table first: its modules import helpers)
from keykeeper.kmip.messages import BatchResult
from keykeeper.kmip.ops import OPERATIONS
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    HashingAlgorithm,
    Operation,
    PaddingMethod,
    ResultReason,
    ValidityIndicator,
)
from keykeeper.kmip.ttlv.tags import Tag
from tests.kmip.conftest import KmipServer
from tests.kmip.crypto_helpers import T, b, call, failed, field, make_key, params, round_trip
from tests.kmip.kmip_attr_helpers import one, principal_cert


@pytest.fixture(scope="module")
def aes(kmip_server: KmipServer) -> str:
    return make_key(kmip_server, "encrypt", "AES_256_GCM")


def test_operations_are_dispatched() -> None:
    for op in (Operation.ENCRYPT, Operation.DECRYPT, Operation.SIGN,
               Operation.SIGNATURE_VERIFY, Operation.MAC, Operation.MAC_VERIFY):
        assert int(op) in OPERATIONS


@pytest.mark.parametrize("mode,pad", [
    (BlockCipherMode.CBC, PaddingMethod.PKCS5), (BlockCipherMode.ECB, PaddingMethod.PKCS5),
    (BlockCipherMode.CTR, None), (BlockCipherMode.GCM, None), (BlockCipherMode.CCM, None)])
def test_aes_modes_round_trip(kmip_server: KmipServer, aes: str, mode: int,
                              pad: int | None) -> None:
    p = params(mode=mode, **({"padding": pad} if pad is not None else {}))
    data = b"attack at dawn: " + secrets.token_bytes(21)
    assert round_trip(kmip_server, aes, p, data) == data


def test_gcm_with_caller_iv_aad_and_short_tag(kmip_server: KmipServer, aes: str) -> None:
    p = params(mode=BlockCipherMode.GCM, tag_length=12)
    iv, aad = secrets.token_bytes(12), b"header"
    enc = call(kmip_server, Operation.ENCRYPT, aes, p, b(Tag.DATA, b"payload"),
               b(Tag.IV_COUNTER_NONCE, iv), b(Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad))
    assert field(enc, Tag.IV_COUNTER_NONCE) is None  # the caller's IV is not echoed
    tag = field(enc, Tag.AUTHENTICATED_ENCRYPTION_TAG)
    assert len(tag) == 12
    ct = field(enc, Tag.DATA)
    common = (b(Tag.IV_COUNTER_NONCE, iv), b(Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, aad))
    ok = call(kmip_server, Operation.DECRYPT, aes, p, b(Tag.DATA, ct), *common,
              b(Tag.AUTHENTICATED_ENCRYPTION_TAG, tag))
    assert field(ok, Tag.DATA) == b"payload"
    # A wrong tag and a bad CBC padding answer the same: Cryptographic_Failure.
    bad_tag = call(kmip_server, Operation.DECRYPT, aes, p, b(Tag.DATA, ct), *common,
                   b(Tag.AUTHENTICATED_ENCRYPTION_TAG, bytes(12)))
    first = failed(bad_tag, ResultReason.CRYPTOGRAPHIC_FAILURE)
    # A block of zeros, CBC-encrypted without padding, decrypts to a last byte of 0:
    # never valid PKCS#5 padding (zeros decrypted under a random key would be 1 in 256).
    zero_iv = b(Tag.IV_COUNTER_NONCE, bytes(16))
    raw = call(kmip_server, Operation.ENCRYPT, aes, params(
        mode=BlockCipherMode.CBC, padding=PaddingMethod.NONE), b(Tag.DATA, bytes(16)), zero_iv)
    cbc = params(mode=BlockCipherMode.CBC, padding=PaddingMethod.PKCS5)
    bad_pad = call(kmip_server, Operation.DECRYPT, aes, cbc, b(Tag.DATA, field(raw, Tag.DATA)),
                   zero_iv)
    assert failed(bad_pad, ResultReason.CRYPTOGRAPHIC_FAILURE) == first
    # Tag lengths the mode does not allow (the profile tests expect General_Failure).
    for n in (1, 32):
        r = call(kmip_server, Operation.ENCRYPT, aes, params(mode=BlockCipherMode.GCM,
                                                             tag_length=n), b(Tag.DATA, b"x"))
        failed(r, ResultReason.GENERAL_FAILURE)


def test_random_iv_and_missing_iv(kmip_server: KmipServer, aes: str) -> None:
    p = params(mode=BlockCipherMode.CBC, padding=PaddingMethod.PKCS5, random_iv=True)
    enc = call(kmip_server, Operation.ENCRYPT, aes, p, b(Tag.DATA, b"abc"))
    assert len(field(enc, Tag.IV_COUNTER_NONCE)) == 16
    r = call(kmip_server, Operation.DECRYPT, aes,
             params(mode=BlockCipherMode.CBC, padding=PaddingMethod.PKCS5),
             b(Tag.DATA, field(enc, Tag.DATA)))
    failed(r, ResultReason.INVALID_MESSAGE)


def test_chacha20_and_chacha20_poly1305(kmip_server: KmipServer) -> None:
    uid = make_key(kmip_server, "encrypt", "CHACHA20_POLY1305")
    stream = call(kmip_server, Operation.ENCRYPT, uid, params(), b(Tag.DATA, bytes(64)),
                  b(Tag.IV_COUNTER_NONCE, bytes(8)))
    ks = field(stream, Tag.DATA)
    assert len(ks) == 64 and field(stream, Tag.AUTHENTICATED_ENCRYPTION_TAG) is None
    back = call(kmip_server, Operation.DECRYPT, uid, params(), b(Tag.DATA, ks),
                b(Tag.IV_COUNTER_NONCE, bytes(8)))
    assert field(back, Tag.DATA) == bytes(64)
    # The stream in two parts gives the single-part keystream.
    parts = [call(kmip_server, Operation.ENCRYPT, uid, params(), b(Tag.DATA, bytes(20)),
                  b(Tag.IV_COUNTER_NONCE, bytes(8)), Item(Tag.INIT_INDICATOR, T.BOOLEAN, True))]
    corr = field(parts[0], Tag.CORRELATION_VALUE)
    parts.append(call(kmip_server, Operation.ENCRYPT, uid, params(), b(Tag.DATA, bytes(44)),
                      b(Tag.CORRELATION_VALUE, corr), Item(Tag.FINAL_INDICATOR, T.BOOLEAN, True)))
    assert b"".join(field(p, Tag.DATA) for p in parts) == ks
    aead = params(mode=BlockCipherMode.AEAD, tag_length=16)
    assert round_trip(kmip_server, uid, aead, b"poly",
                       b(Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"aad")) == b"poly"


def test_rsa_oaep_hashes_and_pkcs1v15_decrypt_refused(kmip_server: KmipServer) -> None:
    uid = make_key(kmip_server, "encrypt", "RSA_OAEP_3072_SHA256")
    for h, mgf in ((HashingAlgorithm.SHA_256, HashingAlgorithm.SHA_256),
                   (HashingAlgorithm.SHA_1, HashingAlgorithm.SHA_1),
                   (HashingAlgorithm.SHA_384, HashingAlgorithm.SHA_256)):
        p = params(padding=PaddingMethod.OAEP, hash=h, mgf_hash=mgf, p_source=b"label")
        assert round_trip(kmip_server, uid, p, b"secret") == b"secret"
    # The public object encrypts; it cannot decrypt.
    pub = uid + "/public"
    enc = call(kmip_server, Operation.ENCRYPT, pub, params(padding=PaddingMethod.OAEP),
               b(Tag.DATA, b"m"))
    ct = field(enc, Tag.DATA)
    r = call(kmip_server, Operation.DECRYPT, pub, params(padding=PaddingMethod.OAEP),
             b(Tag.DATA, ct))
    failed(r, ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)
    dec = call(kmip_server, Operation.DECRYPT, uid, params(padding=PaddingMethod.OAEP),
               b(Tag.DATA, ct))
    assert field(dec, Tag.DATA) == b"m"
    v15 = params(padding=PaddingMethod.PKCS1_V1_5)
    enc15 = call(kmip_server, Operation.ENCRYPT, uid, v15, b(Tag.DATA, b"m"))
    r = call(kmip_server, Operation.DECRYPT, uid, v15, b(Tag.DATA, field(enc15, Tag.DATA)))
    failed(r, ResultReason.OPERATION_NOT_SUPPORTED)
    r = call(kmip_server, Operation.DECRYPT, uid, params(padding=PaddingMethod.OAEP),
             b(Tag.DATA, secrets.token_bytes(384)))
    failed(r, ResultReason.CRYPTOGRAPHIC_FAILURE)


def _public_key(kmip: KmipServer, uid: str) -> Any:
    r = kmip.rest.get(f"/v1/keys/{uid.split('/')[0]}/public-key")
    assert r.status_code == 200, r.text
    return serialization.load_pem_public_key(r.json()["public_key"].encode())


@pytest.mark.parametrize("algorithm", ["RSA_PSS_3072_SHA256", "ECDSA_P256_SHA256"])
def test_sign_and_verify(kmip_server: KmipServer, algorithm: str) -> None:
    uid = make_key(kmip_server, "sign", algorithm)
    public = _public_key(kmip_server, uid)
    msg = b"to be signed"
    sig = field(call(kmip_server, Operation.SIGN, uid, b(Tag.DATA, msg)), Tag.SIGNATURE_DATA)
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(sig, msg, padding.PSS(padding.MGF1(hashes.SHA256()),
                                            padding.PSS.AUTO), hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(sig, msg, ec.ECDSA(hashes.SHA256()))  # X9.62 DER
    digest = hashes.Hash(hashes.SHA256())
    digest.update(msg)
    sig2 = field(call(kmip_server, Operation.SIGN, uid, b(Tag.DIGESTED_DATA, digest.finalize())),
                 Tag.SIGNATURE_DATA)
    for s, m, want in ((sig, msg, ValidityIndicator.VALID), (sig2, msg, ValidityIndicator.VALID),
                       (sig, b"other", ValidityIndicator.INVALID)):
        for target in (uid, uid + "/public"):
            r = call(kmip_server, Operation.SIGNATURE_VERIFY, target, b(Tag.DATA, m),
                     b(Tag.SIGNATURE_DATA, s))
            assert field(r, Tag.VALIDITY_INDICATOR) == int(want)
    failed(call(kmip_server, Operation.SIGN, uid + "/public", b(Tag.DATA, msg)),
           ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)


def test_rsa_pkcs1v15_signature_on_pss_key(kmip_server: KmipServer) -> None:
    uid = make_key(kmip_server, "sign", "RSA_PSS_3072_SHA256")
    p = params(padding=PaddingMethod.PKCS1_V1_5, hash=HashingAlgorithm.SHA_512)
    sig = field(call(kmip_server, Operation.SIGN, uid, p, b(Tag.DATA, b"m")), Tag.SIGNATURE_DATA)
    public = _public_key(kmip_server, uid)
    public.verify(sig, b"m", padding.PKCS1v15(), hashes.SHA512())


def test_mac_and_mac_verify(kmip_server: KmipServer) -> None:
    uid = make_key(kmip_server, "mac", "HMAC_SHA256")
    tag = field(call(kmip_server, Operation.MAC, uid, b(Tag.DATA, b"msg")), Tag.MAC_DATA)
    assert len(tag) == 32
    for mac, want in ((tag, ValidityIndicator.VALID), (tag[:16], ValidityIndicator.INVALID),
                      (bytes(32), ValidityIndicator.INVALID)):
        r = call(kmip_server, Operation.MAC_VERIFY, uid, b(Tag.DATA, b"msg"),
                 b(Tag.MAC_DATA, mac))
        assert field(r, Tag.VALIDITY_INDICATOR) == int(want)
    p512 = params(algorithm=CryptographicAlgorithm.HMAC_SHA512)
    assert len(field(call(kmip_server, Operation.MAC, uid, p512, b(Tag.DATA, b"m")),
                     Tag.MAC_DATA)) == 64


def test_refusals(kmip_server: KmipServer, aes: str) -> None:
    # One purpose per key: an encryption key neither signs nor MACs.
    failed(call(kmip_server, Operation.MAC, aes, b(Tag.DATA, b"m")),
           ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)
    failed(call(kmip_server, Operation.SIGN, aes, b(Tag.DATA, b"m")),
           ResultReason.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK)
    # 3DES never runs.
    r = call(kmip_server, Operation.ENCRYPT, aes,
             params(algorithm=CryptographicAlgorithm.THREE_DES), b(Tag.DATA, bytes(8)))
    failed(r, ResultReason.INVALID_FIELD)
    # Multi-part Sign is refused clearly.
    sign_key = make_key(kmip_server, "sign", "ECDSA_P256_SHA256")
    r = call(kmip_server, Operation.SIGN, sign_key, b(Tag.DATA, b"part"),
             Item(Tag.INIT_INDICATOR, T.BOOLEAN, True))
    failed(r, ResultReason.OPERATION_NOT_SUPPORTED)
    # Unknown objects and missing data.
    failed(call(kmip_server, Operation.ENCRYPT, "k-" + "0" * 32 + "/1", b(Tag.DATA, b"m")),
           ResultReason.OBJECT_NOT_FOUND)
    failed(call(kmip_server, Operation.ENCRYPT, "nonsense", b(Tag.DATA, b"m")),
           ResultReason.OBJECT_NOT_FOUND)
    failed(call(kmip_server, Operation.ENCRYPT, aes), ResultReason.INVALID_FIELD)


def test_disabled_key_refuses_and_usage_is_counted(kmip_server: KmipServer) -> None:
    uid = make_key(kmip_server, "encrypt", "AES_128_GCM")
    key_id = uid.split("/")[0]
    p = params(mode=BlockCipherMode.CBC, padding=PaddingMethod.PKCS5)
    enc = call(kmip_server, Operation.ENCRYPT, uid, p, b(Tag.DATA, b"x"))
    assert field(enc, Tag.DATA)
    r = kmip_server.rest.post(f"/v1/keys/{key_id}/disable")
    assert r.status_code == 200, r.text
    failed(call(kmip_server, Operation.ENCRYPT, uid, p, b(Tag.DATA, b"x")),
           ResultReason.WRONG_KEY_LIFECYCLE_STATE)


def _parts(kmip: KmipServer, op: Operation, uid: str, p: Item, chunks: list[bytes],
           first: list[Item], last: list[Item]) -> tuple[bytes, BatchResult]:
    """Run ``chunks`` as one multi-part operation; (joined output, final result)."""
    out = b""
    corr: bytes | None = None
    result: BatchResult | None = None
    for i, chunk in enumerate(chunks):
        items = [p, b(Tag.DATA, chunk)]
        if i == 0:
            items += [Item(Tag.INIT_INDICATOR, T.BOOLEAN, True), *first]
        else:
            assert corr is not None
            items.append(b(Tag.CORRELATION_VALUE, corr))
        if i == len(chunks) - 1:
            items += [Item(Tag.FINAL_INDICATOR, T.BOOLEAN, True), *last]
        result = call(kmip, op, uid, *items)
        out += field(result, Tag.DATA)
        corr = field(result, Tag.CORRELATION_VALUE)
        assert (corr is None) == (i == len(chunks) - 1)
    assert result is not None
    return out, result


@pytest.mark.parametrize("mode,pad", [(BlockCipherMode.GCM, None),
                                      (BlockCipherMode.CBC, PaddingMethod.PKCS5),
                                      (BlockCipherMode.CTR, None)])
def test_multi_part_matches_single_part(kmip_server: KmipServer, aes: str, mode: int,
                                        pad: int | None) -> None:
    p = params(mode=mode, **({"padding": pad} if pad is not None else {}))
    iv = secrets.token_bytes(12 if mode == BlockCipherMode.GCM else 16)
    data = secrets.token_bytes(70)
    aad = ([b(Tag.AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA, b"hdr")]
           if mode == BlockCipherMode.GCM else [])
    one = call(kmip_server, Operation.ENCRYPT, aes, p, b(Tag.DATA, data),
               b(Tag.IV_COUNTER_NONCE, iv), *aad)
    chunks = [data[:20], data[20:33], data[33:]]
    ct, last = _parts(kmip_server, Operation.ENCRYPT, aes, p, chunks,
                      [b(Tag.IV_COUNTER_NONCE, iv), *aad], [])
    assert ct == field(one, Tag.DATA)
    tag = field(last, Tag.AUTHENTICATED_ENCRYPTION_TAG)
    assert tag == field(one, Tag.AUTHENTICATED_ENCRYPTION_TAG)
    tail = [b(Tag.AUTHENTICATED_ENCRYPTION_TAG, tag)] if tag is not None else []
    plain, _ = _parts(kmip_server, Operation.DECRYPT, aes, p, [ct[:7], ct[7:50], ct[50:]],
                      [b(Tag.IV_COUNTER_NONCE, iv), *aad], tail)
    assert plain == data
    if tag is not None:  # a wrong tag at the final part: the uniform failure
        corr = field(call(kmip_server, Operation.DECRYPT, aes, p, b(Tag.DATA, ct[:16]),
                          Item(Tag.INIT_INDICATOR, T.BOOLEAN, True),
                          b(Tag.IV_COUNTER_NONCE, iv), *aad), Tag.CORRELATION_VALUE)
        r = call(kmip_server, Operation.DECRYPT, aes, p, b(Tag.DATA, ct[16:]),
                 b(Tag.CORRELATION_VALUE, corr), Item(Tag.FINAL_INDICATOR, T.BOOLEAN, True),
                 b(Tag.AUTHENTICATED_ENCRYPTION_TAG, bytes(16)))
        failed(r, ResultReason.CRYPTOGRAPHIC_FAILURE)


def test_multi_part_correlation_is_bound(kmip_server: KmipServer, aes: str) -> None:
    p = params(mode=BlockCipherMode.CTR)
    first = call(kmip_server, Operation.ENCRYPT, aes, p, b(Tag.DATA, b"a" * 5),
                 Item(Tag.INIT_INDICATOR, T.BOOLEAN, True))
    corr = field(first, Tag.CORRELATION_VALUE)
    assert len(field(first, Tag.IV_COUNTER_NONCE)) == 16  # drawn by the server
    other = make_key(kmip_server, "encrypt", "AES_256_GCM")
    # Another object, another operation, or an unknown value: refused.
    for uid, op in ((other, Operation.ENCRYPT), (aes, Operation.DECRYPT)):
        failed(call(kmip_server, op, uid, p, b(Tag.DATA, b"b"), b(Tag.CORRELATION_VALUE, corr),
                    *([b(Tag.IV_COUNTER_NONCE, bytes(16))] if op == Operation.DECRYPT else [])),
               ResultReason.INVALID_FIELD)
    failed(call(kmip_server, Operation.ENCRYPT, aes, p, b(Tag.DATA, b"b"),
                b(Tag.CORRELATION_VALUE, bytes(16))), ResultReason.INVALID_FIELD)
    # Sign, MAC and the AEAD ChaCha20-Poly1305 have no multi-part form here.
    chacha = make_key(kmip_server, "encrypt", "CHACHA20_POLY1305")
    failed(call(kmip_server, Operation.ENCRYPT, chacha, params(mode=BlockCipherMode.AEAD),
                b(Tag.DATA, b"x"), Item(Tag.INIT_INDICATOR, T.BOOLEAN, True)),
           ResultReason.OPERATION_NOT_SUPPORTED)


def test_audited_with_key_and_version_never_data(kmip_server: KmipServer) -> None:
    uid = make_key(kmip_server, "mac", "HMAC_SHA384")
    key_id = uid.split("/")[0]
    secret = b"audit-must-not-see-" + secrets.token_hex(8).encode()
    assert field(call(kmip_server, Operation.MAC, uid, b(Tag.DATA, secret)), Tag.MAC_DATA)
    records: list[dict[str, Any]] = []
    for _ in range(40):  # the audit writer appends asynchronously
        r = kmip_server.rest.get("/v1/audit", params={"key": key_id})
        assert r.status_code == 200, r.text
        records = [x for x in r.json()["records"] if x.get("operation") == "kmip.mac"]
        if records:
            break
        time.sleep(0.25)
    assert records, r.text
    assert (records[0]["key_version"], records[0]["interface"]) == (1, "kmip")
    assert secret.decode() not in r.text and secret.hex() not in r.text


def test_block_cipher_oracles_need_both_permissions(kmip_server: KmipServer, aes: str,
                                                    kmip_pki: Any,
                                                    tmp_path_factory: pytest.TempPathFactory
                                                    ) -> None:
    """An encrypt-only principal must not turn raw ECB / chosen-IV modes into a decryption
    oracle for the key's keykeeper-format ciphertexts (their nonces are public)."""
    name = "enc-only-" + secrets.token_hex(4)
    cert = principal_cert(kmip_server, kmip_pki, tmp_path_factory.mktemp(name), name,
                          ["encrypt"], kmip_server.namespace)

    def as_enc_only(op: Operation, *items: Item) -> BatchResult:
        payload = [Item(Tag.UNIQUE_IDENTIFIER, T.TEXT_STRING, aes), *items]
        return one(kmip_server, (2, 1), op, payload, cert)

    # One-way: GCM with a server-drawn IV.
    gcm = as_enc_only(Operation.ENCRYPT, params(mode=BlockCipherMode.GCM), b(Tag.DATA, b"x"))
    assert len(field(gcm, Tag.IV_COUNTER_NONCE)) == 12
    # Oracles: ECB, CBC, CTR with a chosen counter block, GCM with a chosen IV.
    for p, extra in ((params(mode=BlockCipherMode.ECB), []),
                     (params(mode=BlockCipherMode.CBC, padding=PaddingMethod.PKCS5), []),
                     (params(mode=BlockCipherMode.CTR), [b(Tag.IV_COUNTER_NONCE, bytes(16))]),
                     (params(mode=BlockCipherMode.GCM), [b(Tag.IV_COUNTER_NONCE, bytes(12))])):
        failed(as_enc_only(Operation.ENCRYPT, p, b(Tag.DATA, bytes(16)), *extra),
               ResultReason.PERMISSION_DENIED)
