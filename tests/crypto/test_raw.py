"""crypto/raw.py and crypto/raw_pk.py (KMIP's raw modes) against known answers: the shared
Wycheproof files (every case of each file in one test, each failure named by tcId), the
RFC 8439 and KMIP profile vectors, and the refusals (PKCS#1 v1.5 decryption, HSM keys,
bad tag lengths)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from keykeeper.crypto import raw, raw_pk, raw_stream
from keykeeper.crypto.raw_params import RawParams
from keykeeper.errors import DecryptionFailed, InvalidArgument
from tests.crypto.wycheproof_loader import cases, load

pytestmark = pytest.mark.skipif(load("aes_gcm_test.json") is None,
                                reason="Wycheproof vectors absent")

_SHA = {"SHA-1": "SHA1", "SHA-224": "SHA224", "SHA-256": "SHA256", "SHA-384": "SHA384",
        "SHA-512": "SHA512"}


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def _run(filename: str, check: Any) -> int:
    """Run ``check(group, case) -> bool`` on every case; assert none disagrees with its
    result ("acceptable" cases may go either way). Returns the count of cases run."""
    wrong: list[int] = []
    n = 0
    for group, case in cases(filename):
        n += 1
        ok = check(group, case)
        if (case["result"] == "valid" and not ok) or (case["result"] == "invalid" and ok):
            wrong.append(case["tcId"])
    assert not wrong, f"{filename}: cases disagreeing with their result: {wrong[:20]}"
    assert n > 0
    return n


def test_aes_cbc_pkcs5_wycheproof() -> None:
    def check(g: Any, c: Any) -> bool:
        key, iv, msg, ct = h(c["key"]), h(c["iv"]), h(c["msg"]), h(c["ct"])
        try:
            plain = raw.aes_decrypt(key, "CBC", ct, iv=iv, padding_name="PKCS5")
        except DecryptionFailed:
            return False
        if plain != msg:
            return False
        return raw.aes_encrypt(key, "CBC", msg, iv=iv, padding_name="PKCS5") == (ct, None)

    _run("aes_cbc_pkcs5_test.json", check)


@pytest.mark.parametrize("filename,mode", [("aes_gcm_test.json", "GCM"),
                                           ("chacha20_poly1305_test.json", "AEAD")])
def test_aead_wycheproof(filename: str, mode: str) -> None:
    def check(g: Any, c: Any) -> bool:
        key, iv, aad, msg = h(c["key"]), h(c["iv"]), h(c["aad"]), h(c["msg"])
        ct, tag = h(c["ct"]), h(c["tag"])
        if mode == "GCM" and not 8 <= len(iv) <= 128:
            # Outside the IV sizes offered (8..128 bytes, as pyca's GCM): refused.
            with pytest.raises(InvalidArgument):
                raw.aes_decrypt(key, "GCM", ct, iv=iv, aad=aad, tag=tag)
            return bool(c["result"] == "valid")
        try:
            if mode == "GCM":
                plain = raw.aes_decrypt(key, "GCM", ct, iv=iv, aad=aad, tag=tag)
                again = raw.aes_encrypt(key, "GCM", msg, iv=iv, aad=aad,
                                        tag_length=len(tag))
            else:
                plain = raw.chacha20_poly1305_decrypt(key, iv, ct, tag, aad)
                again = raw.chacha20_poly1305_encrypt(key, iv, msg, aad, len(tag))
        except (DecryptionFailed, InvalidArgument):
            return False
        return plain == msg and again == (ct, tag)

    _run(filename, check)


@pytest.mark.parametrize("filename", [
    "rsa_oaep_2048_sha1_mgf1sha1_test.json", "rsa_oaep_2048_sha256_mgf1sha1_test.json",
    "rsa_oaep_2048_sha256_mgf1sha256_test.json", "rsa_oaep_2048_sha384_mgf1sha384_test.json",
    "rsa_oaep_2048_sha512_mgf1sha512_test.json"])
def test_rsa_oaep_decrypt_wycheproof(filename: str) -> None:
    keys: dict[str, rsa.RSAPrivateKey] = {}

    def check(g: Any, c: Any) -> bool:
        der = g["privateKeyPkcs8"]
        if der not in keys:
            loaded = serialization.load_der_private_key(h(der), None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            keys[der] = loaded
        try:
            plain = raw_pk.rsa_decrypt(keys[der], "OAEP", h(c["ct"]), hash_name=_SHA[g["sha"]],
                                       mgf_hash=_SHA[g["mgfSha"]], label=h(c["label"]))
        except DecryptionFailed:
            return False
        return plain == h(c["msg"])

    _run(filename, check)


def _public(der: str) -> Any:
    return serialization.load_der_public_key(h(der))


@pytest.mark.parametrize("filename,pad", [
    ("rsa_pss_2048_sha256_mgf1_32_test.json", "PSS"),
    ("rsa_signature_2048_sha256_test.json", "PKCS1_V1_5"),
    ("rsa_signature_2048_sha512_test.json", "PKCS1_V1_5")])
def test_rsa_signature_verify_wycheproof(filename: str, pad: str) -> None:
    def check(g: Any, c: Any) -> bool:
        key = _public(g["publicKeyDer"])
        return raw_pk.rsa_verify(key, pad, _SHA[g["sha"]], h(c["msg"]), h(c["sig"]),
                                 mgf_hash=_SHA.get(g.get("mgfSha", "")),
                                 salt_length=g.get("sLen"))

    _run(filename, check)


@pytest.mark.parametrize("filename", ["ecdsa_secp256r1_sha256_test.json",
                                      "ecdsa_secp384r1_sha384_test.json"])
def test_ecdsa_verify_wycheproof(filename: str) -> None:
    def check(g: Any, c: Any) -> bool:
        return raw_pk.ecdsa_verify(_public(g["publicKeyDer"]), _SHA[g["sha"]], h(c["msg"]),
                                   h(c["sig"]))

    _run(filename, check)


@pytest.mark.parametrize("filename,hash_name", [
    ("hmac_sha1_test.json", "SHA1"), ("hmac_sha224_test.json", "SHA224"),
    ("hmac_sha256_test.json", "SHA256"), ("hmac_sha384_test.json", "SHA384"),
    ("hmac_sha512_test.json", "SHA512")])
def test_hmac_wycheproof(filename: str, hash_name: str) -> None:
    def check(g: Any, c: Any) -> bool:
        key, msg, tag = h(c["key"]), h(c["msg"]), h(c["tag"])
        full = raw.hmac_tag(key, hash_name, msg)
        if g["tagSize"] // 8 < len(full):  # a truncated tag: never accepted by keykeeper
            assert raw.hmac_verify(key, hash_name, msg, tag) is False
            return full[: g["tagSize"] // 8] == tag
        return raw.hmac_verify(key, hash_name, msg, tag)

    _run(filename, check)


def test_chacha20_stream_rfc8439_and_kmip_layouts() -> None:
    # RFC 8439 §A.1 test vector 1 (zero key, zero nonce, counter 0): the KMIP profile
    # CS-BC-M-CHACHA20-1 sends it with an 8-byte nonce.
    first = h("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7")
    assert raw.chacha20(bytes(32), bytes(8), bytes(64))[:32] == first
    assert raw.chacha20(bytes(32), bytes(12), bytes(64))[:32] == first
    # RFC 8439 §2.4.2: counter 1, 12-byte nonce.
    key = bytes(range(32))
    nonce = h("000000000000004a00000000")
    plain = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
             b"for the future, sunscreen would be it.")
    ct = raw.chacha20(key, nonce, plain, initial_counter=1)
    assert ct[:16] == h("6e2e359a2568f98041ba0728dd0d6981")
    assert raw.chacha20(key, nonce, ct, initial_counter=1) == plain


def test_chacha20_poly1305_truncated_tag_is_checked() -> None:
    key, nonce, aad = os.urandom(32), os.urandom(12), b"hdr"
    ct, tag = raw.chacha20_poly1305_encrypt(key, nonce, b"secret", aad)
    assert raw.chacha20_poly1305_decrypt(key, nonce, ct, tag[:12], aad) == b"secret"
    bad = bytes([tag[0] ^ 1]) + tag[1:12]
    with pytest.raises(DecryptionFailed):
        raw.chacha20_poly1305_decrypt(key, nonce, ct, bad, aad)
    with pytest.raises(raw.BadTagLength):
        raw.chacha20_poly1305_encrypt(key, nonce, b"x", aad, tag_length=32)


def test_aes_modes_round_trip_and_uniform_failures() -> None:
    key = os.urandom(32)
    iv = os.urandom(16)
    for mode, pad in (("ECB", "PKCS5"), ("CBC", "PKCS5"), ("CBC", "NONE"), ("CTR", None)):
        data = os.urandom(32)
        ct, tag = raw.aes_encrypt(key, mode, data, iv=None if mode == "ECB" else iv,
                                  padding_name=pad)
        assert tag is None
        assert raw.aes_decrypt(key, mode, ct, iv=None if mode == "ECB" else iv,
                               padding_name=pad) == data
    ct, tag = raw.aes_encrypt(key, "CCM", b"abc", iv=os.urandom(13)[:12], tag_length=8)
    assert tag is not None and len(tag) == 8
    # Bad padding and a bad GCM tag: the same uniform error.
    with pytest.raises(DecryptionFailed) as first:
        raw.aes_decrypt(key, "CBC", os.urandom(32), iv=iv, padding_name="PKCS5")
    gct, gtag = raw.aes_encrypt(key, "GCM", b"data", iv=bytes(12))
    assert gtag is not None
    with pytest.raises(DecryptionFailed) as second:
        raw.aes_decrypt(key, "GCM", gct, iv=bytes(12), tag=bytes(16))
    assert str(first.value) == str(second.value)
    with pytest.raises(raw.BadTagLength):
        raw.aes_encrypt(key, "GCM", b"x", iv=bytes(12), tag_length=1)
    with pytest.raises(InvalidArgument):
        raw.aes_encrypt(key, "CBC", b"not a block", iv=iv)


def test_gcm_truncated_tag_kmip_profile_vector() -> None:
    # CS-BC-M-GCM-1-21 (the McGrew-Viega test case 2): a 12-byte tag decrypts.
    ct = h("0388dace60b6a392f328c2b971b2fe78")
    assert raw.aes_decrypt(bytes(16), "GCM", ct, iv=bytes(12),
                           tag=h("ab6e47d42cec13bdf53a67b2")) == bytes(16)


def test_rsa_pkcs1v15_decryption_is_refused_and_signatures_round_trip() -> None:
    key = rsa.generate_private_key(65537, 2048)
    ct = raw_pk.rsa_encrypt(key, "PKCS1_V1_5", b"m")
    assert key.decrypt(ct, padding.PKCS1v15()) == b"m"
    with pytest.raises(raw.RawModeNotSupported):
        raw_pk.rsa_decrypt(key, "PKCS1_V1_5", ct)
    for pad in ("PSS", "PKCS1_V1_5"):
        for hash_name in ("SHA256", "SHA512"):
            sig = raw_pk.rsa_sign(key, pad, hash_name, b"msg")
            assert raw_pk.rsa_verify(key.public_key(), pad, hash_name, b"msg", sig)
            assert not raw_pk.rsa_verify(key.public_key(), pad, hash_name, b"msh", sig)
        # SHA-1: verify only (NIST SP 800-131A Rev 2).
        with pytest.raises(InvalidArgument):
            raw_pk.rsa_sign(key, pad, "SHA1", b"msg")
        legacy = key.sign(b"msg", padding.PKCS1v15() if pad == "PKCS1_V1_5" else padding.PSS(
            padding.MGF1(hashes.SHA1()), padding.PSS.DIGEST_LENGTH), hashes.SHA1())
        assert raw_pk.rsa_verify(key.public_key(), pad, "SHA1", b"msg", legacy)
    # Digested Data: the digest signed as is; salt 222 = the maximum for SHA-256 / 2048.
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"msg")
    sig = raw_pk.rsa_sign(key, "PSS", "SHA256", digest.finalize(), prehashed=True,
                          salt_length=222)
    assert raw_pk.rsa_verify(key, "PSS", "SHA256", b"msg", sig)


def test_ecdsa_sign_prehashed_der() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    h384 = hashes.Hash(hashes.SHA384())
    h384.update(b"hello")
    sig = raw_pk.ecdsa_sign(key, "SHA384", h384.finalize(), prehashed=True)
    assert sig[0] == 0x30  # X9.62 DER SEQUENCE
    assert raw_pk.ecdsa_verify(key.public_key(), "SHA384", b"hello", sig)
    with pytest.raises(InvalidArgument):
        raw_pk.ecdsa_sign(key, "SHA384", b"short", prehashed=True)
    with pytest.raises(InvalidArgument):
        raw.hash_for("MD5")


def test_params_merge_keeps_request_over_stored() -> None:
    stored = RawParams(mode="CBC", padding="PKCS5", random_iv=True)
    asked = RawParams(mode="GCM")
    merged = asked.over(stored)
    assert (merged.mode, merged.padding, merged.random_iv) == ("GCM", "PKCS5", True)
    assert RawParams().over(None) == RawParams()


def test_raw_key_from_handles() -> None:
    from keykeeper.crypto import generate_material, load_private, load_public
    from keykeeper.crypto.base import KeyHandle
    from keykeeper.crypto.public_only import PublicOnlyKeyHandle
    from keykeeper.crypto.registry import get_spec

    aes = get_spec("AES_256_GCM")
    material = generate_material(aes)
    assert raw.raw_key(load_private(aes, material)) == material
    ecdsa = get_spec("ECDSA_P256_SHA256")
    private = load_private(ecdsa, generate_material(ecdsa))
    assert isinstance(raw.raw_key(private), ec.EllipticCurvePrivateKey)
    public = PublicOnlyKeyHandle(load_public(ecdsa, private.public_key_pem().encode()))
    assert isinstance(raw.raw_key(public), ec.EllipticCurvePublicKey)
    # A handle holding no material here (as an HSM-protected key's): refused clearly.
    with pytest.raises(raw.RawModeNotSupported):
        raw.raw_key(KeyHandle(aes))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=100), mode=st.sampled_from(["ECB", "CBC", "CTR", "GCM", "CCM"]),
       key_size=st.sampled_from([16, 32]), cut=st.integers(min_value=0, max_value=100))
def test_aes_round_trip_and_streams_agree(data: bytes, mode: str, key_size: int,
                                         cut: int) -> None:
    """Every mode decrypts what it encrypts; the multi-part form gives the same bytes."""
    key = os.urandom(key_size)
    iv = {"ECB": None, "CBC": os.urandom(16), "CTR": os.urandom(16), "GCM": os.urandom(12),
          "CCM": os.urandom(12)}[mode]
    pad = "PKCS5" if mode in ("ECB", "CBC") else None
    ct, tag = raw.aes_encrypt(key, mode, data, iv=iv, padding_name=pad, aad=b"a"
                              if mode in ("GCM", "CCM") else b"")
    assert raw.aes_decrypt(key, mode, ct, iv=iv, padding_name=pad, tag=tag,
                           aad=b"a" if mode in ("GCM", "CCM") else b"") == data
    if mode == "CCM":
        return
    enc = raw_stream.open_stream(key, "AES", mode, encrypt=True, iv=iv, padding_name=pad,
                                 aad=b"a" if mode == "GCM" else b"")
    first = enc.update(data[:cut])
    rest, stag = enc.finish(data[cut:])
    assert (first + rest, stag) == (ct, tag)
    dec = raw_stream.open_stream(key, "AES", mode, encrypt=False, iv=iv, padding_name=pad,
                                 aad=b"a" if mode == "GCM" else b"")
    head = dec.update(ct[:cut])
    tail, _ = dec.finish(ct[cut:], tag)
    assert head + tail == data
