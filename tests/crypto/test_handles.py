"""Unit tests over every spec: generate, load, the supported operations, the refused ones."""

from __future__ import annotations

import copy
import pickle

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

from keykeeper.crypto import (
    ALGORITHMS,
    KeyHandle,
    PublicKeyHandle,
    Purpose,
    generate_material,
    get_spec,
    load_private,
    load_public,
    random_bytes,
)
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument

from .keys import material, names, private, public

ALL = names()
ASYMMETRIC = names(asymmetric=True)
SYMMETRIC = names(asymmetric=False)

# operation name -> a call that exercises it on a private handle
PRIVATE_OPS = {
    "encrypt": lambda k: k.encrypt(b"p", b""),
    "decrypt": lambda k: k.decrypt(b"\x00" * 64, b""),
    "sign": lambda k: k.sign(b"m"),
    "verify": lambda k: k.verify(b"m", b"s"),
    "mac": lambda k: k.mac(b"m"),
    "verify_mac": lambda k: k.verify_mac(b"m", b"t"),
    "encapsulate": lambda k: k.encapsulate(),
    "decapsulate": lambda k: k.decapsulate(b"c"),
    "wrap": lambda k: k.wrap(b"m"),
    "unwrap": lambda k: k.unwrap(b"\x00" * 600),
}
SUPPORTED = {
    "aes_gcm": {"encrypt", "decrypt"},
    "chacha20_poly1305": {"encrypt", "decrypt"},
    "rsa_oaep": {"encrypt", "decrypt"},
    "rsa_pss": {"sign", "verify"},
    "rsa_pkcs1": {"sign", "verify"},
    "ecdsa": {"sign", "verify"},
    "ed25519": {"sign", "verify"},
    "ml_dsa": {"sign", "verify"},
    "hmac": {"mac", "verify_mac"},
    "ml_kem": {"encapsulate", "decapsulate"},
    "aes_kwp": {"wrap", "unwrap"},
    "rsa_aes_kwp": {"wrap", "unwrap"},
    "secret_data": set(),   # stored data: tests/crypto/test_stored.py
    "opaque_data": set(),
    "x509_certificate": set(),   # tests/crypto/test_stored.py
}
PUBLIC_OPS = {
    "encrypt": lambda k: k.encrypt(b"p", b""),
    "verify": lambda k: k.verify(b"m", b"s"),
    "encapsulate": lambda k: k.encapsulate(),
    "wrap": lambda k: k.wrap(b"m"),
}
MATERIAL_SIZES = {
    "AES_128_GCM": 16,
    "AES_192_GCM": 24,
    "AES_256_GCM": 32,
    "CHACHA20_POLY1305": 32,
    "HMAC_SHA256": 32,
    "HMAC_SHA384": 48,
    "HMAC_SHA512": 64,
    "AES_256_KWP": 32,
}


def test_supported_table_covers_every_family() -> None:
    assert {s.family for s in ALGORITHMS.values()} == set(SUPPORTED)


@pytest.mark.parametrize("name", SYMMETRIC)
def test_symmetric_material_is_raw_key(name: str) -> None:
    assert len(material(name)) == MATERIAL_SIZES[name]
    assert generate_material(get_spec(name)) != material(name)


@pytest.mark.parametrize("name", ASYMMETRIC)
def test_asymmetric_material_is_pkcs8_der(name: str) -> None:
    key = serialization.load_der_private_key(material(name), password=None)
    spec = get_spec(name)
    if spec.family.startswith("rsa"):
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == spec.key_bits
        assert key.private_numbers().public_numbers.e == 65537
    elif spec.family == "ecdsa":
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.key_size == spec.key_bits
    elif spec.family == "ed25519":
        assert isinstance(key, ed25519.Ed25519PrivateKey)


@pytest.mark.parametrize("name", ALL)
def test_repr_names_algorithm_and_hides_material(name: str) -> None:
    handle = private(name)
    assert repr(handle) == f"<KeyHandle {name}>"
    assert str(handle) == repr(handle)
    assert handle.spec is get_spec(name)
    raw = material(name)
    assert raw.hex() not in repr(handle)
    if get_spec(name).asymmetric:
        assert repr(public(name)) == f"<PublicKeyHandle {name}>"


@pytest.mark.parametrize("name", ALL)
def test_pickling_and_copying_are_refused(name: str) -> None:
    handle = private(name)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(handle, protocol=protocol)
    with pytest.raises(TypeError):
        copy.copy(handle)
    with pytest.raises(TypeError):
        copy.deepcopy(handle)
    if get_spec(name).asymmetric:
        with pytest.raises(TypeError):
            pickle.dumps(public(name))


@pytest.mark.parametrize("name", ALL)
def test_round_trip_of_each_supported_operation(name: str) -> None:
    spec = get_spec(name)
    key = private(name)
    if spec.purpose == Purpose.ENCRYPT:
        blob = key.encrypt(b"secret", b"ctx")
        assert key.decrypt(blob, b"ctx") == b"secret"
        with pytest.raises(DecryptionFailed):
            key.decrypt(blob, b"other ctx")
        if spec.asymmetric:
            assert key.decrypt(public(name).encrypt(b"secret", b"ctx"), b"ctx") == b"secret"
    elif spec.purpose == Purpose.SIGN:
        signature = key.sign(b"message")
        assert key.verify(b"message", signature)
        assert public(name).verify(b"message", signature)
        assert not key.verify(b"massage", signature)
        assert not public(name).verify(b"message", signature[:-1])
    elif spec.purpose == Purpose.MAC:
        tag = key.mac(b"message")
        assert len(tag) == spec.key_bits // 8
        assert key.verify_mac(b"message", tag)
        assert not key.verify_mac(b"message", tag[:-1])
        assert not key.verify_mac(b"massage", tag)
    elif spec.purpose == Purpose.KEM:
        secret, ciphertext = key.encapsulate()
        assert len(secret) == 32
        assert key.decapsulate(ciphertext) == secret
        secret2, ciphertext2 = public(name).encapsulate()
        assert key.decapsulate(ciphertext2) == secret2
        with pytest.raises(DecryptionFailed):
            key.decapsulate(ciphertext[:-1])
        with pytest.raises(DecryptionFailed):
            key.decapsulate(ciphertext + b"\x00")


@pytest.mark.parametrize("name", ALL)
def test_unsupported_operations_raise_failed_precondition(name: str) -> None:
    spec = get_spec(name)
    key = private(name)
    for op, call in PRIVATE_OPS.items():
        if op in SUPPORTED[spec.family]:
            continue
        with pytest.raises(FailedPrecondition) as info:
            call(key)
        assert info.value.detail == f"algorithm {name} does not support {op}"
    if not spec.asymmetric:
        with pytest.raises(FailedPrecondition):
            key.public_key_pem()
        return
    pub = public(name)
    for op, call in PUBLIC_OPS.items():
        if op in SUPPORTED[spec.family]:
            continue
        with pytest.raises(FailedPrecondition, match=f"does not support {op}"):
            call(pub)
    for op in ("decrypt", "sign", "mac", "verify_mac", "decapsulate"):
        assert not hasattr(pub, op)


@pytest.mark.parametrize("name", ASYMMETRIC)
def test_public_key_pem_is_spki_and_loads_back(name: str) -> None:
    pem = private(name).public_key_pem()
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert public(name).public_key_pem() == pem
    der = serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert load_public(get_spec(name), der).public_key_pem() == pem


@pytest.mark.parametrize("name", SYMMETRIC)
def test_load_public_refuses_symmetric_specs(name: str) -> None:
    with pytest.raises(InvalidArgument, match="symmetric"):
        load_public(get_spec(name), b"anything")


@pytest.mark.parametrize("name", SYMMETRIC)
def test_symmetric_wrong_size_is_refused(name: str) -> None:
    size = MATERIAL_SIZES[name]
    for bad in (b"", b"\x00" * (size - 1), b"\x00" * (size + 1), b"\x00" * (size + 8)):
        with pytest.raises(InvalidArgument):
            load_private(get_spec(name), bad)
    with pytest.raises(InvalidArgument):
        load_private(get_spec(name), "not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "other"),
    [
        ("RSA_OAEP_3072_SHA256", "RSA_OAEP_4096_SHA256"),  # wrong modulus size
        ("RSA_PSS_3072_SHA256", "RSA_OAEP_2048_SHA256"),
        ("RSA_PSS_3072_SHA256", "ECDSA_P256_SHA256"),  # wrong key type
        ("ECDSA_P256_SHA256", "ECDSA_P384_SHA384"),  # wrong curve
        ("ECDSA_P521_SHA512", "ECDSA_P256_SHA256"),
        ("ECDSA_P256_SHA256", "ED25519"),
        ("ED25519", "ECDSA_P256_SHA256"),
        ("ML_DSA_44", "ML_DSA_65"),  # wrong parameter set
        ("ML_DSA_87", "ML_KEM_1024"),
        ("ML_KEM_768", "ML_KEM_1024"),
        ("ML_KEM_1024", "ML_DSA_87"),
    ],
)
def test_mismatched_asymmetric_material_is_refused(name: str, other: str) -> None:
    spec = get_spec(name)
    with pytest.raises(InvalidArgument, match=name):
        load_private(spec, material(other))
    with pytest.raises(InvalidArgument, match=name):
        load_public(spec, private(other).public_key_pem().encode())


@pytest.mark.parametrize("name", ASYMMETRIC)
def test_garbage_asymmetric_material_is_refused_without_echo(name: str) -> None:
    spec = get_spec(name)
    garbage = b"\x30\x82" + b"\x41" * 200
    with pytest.raises(InvalidArgument) as info:
        load_private(spec, garbage)
    assert "4141" not in info.value.detail and "AAAA" not in info.value.detail
    with pytest.raises(InvalidArgument):
        load_public(spec, garbage)
    with pytest.raises(InvalidArgument):
        load_private(spec, b"")


def test_pq_raw_seed_is_accepted() -> None:
    seed = bytes(range(32))
    handle = load_private(get_spec("ML_DSA_65"), seed)
    expected = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed).public_key()
    assert public_bytes_of(handle) == expected.public_bytes_raw()
    kem = load_private(get_spec("ML_KEM_768"), bytes(range(64)))
    secret, ct = kem.encapsulate()
    assert kem.decapsulate(ct) == secret
    with pytest.raises(InvalidArgument):
        load_private(get_spec("ML_KEM_768"), bytes(range(63)))


def public_bytes_of(handle: KeyHandle | PublicKeyHandle) -> bytes:
    key = serialization.load_pem_public_key(handle.public_key_pem().encode())
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_load_public_accepts_pem_text_with_leading_whitespace() -> None:
    pem = private("ED25519").public_key_pem().encode()
    assert load_public(get_spec("ED25519"), b"\n" + pem).verify(b"m", private("ED25519").sign(b"m"))


def test_rsa_oaep_plaintext_limit() -> None:
    key = private("RSA_OAEP_3072_SHA256")
    limit = 3072 // 8 - 2 * 32 - 2
    assert key.decrypt(key.encrypt(b"x" * limit, b""), b"") == b"x" * limit
    with pytest.raises(InvalidArgument, match="at most 318 bytes"):
        key.encrypt(b"x" * (limit + 1), b"")
    with pytest.raises(InvalidArgument):
        public("RSA_OAEP_3072_SHA256").encrypt(b"x" * (limit + 1), b"")


def test_rsa_oaep_label_is_the_aad() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_der_private_key(material("RSA_OAEP_3072_SHA256"), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    blob = private("RSA_OAEP_3072_SHA256").encrypt(b"data", b"label")
    oaep = padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=b"label"
    )
    assert key.decrypt(blob, oaep) == b"data"


@pytest.mark.parametrize("name", ["RSA_OAEP_3072_SHA256", "AES_256_GCM", "CHACHA20_POLY1305"])
def test_decrypt_failures_are_uniform(name: str) -> None:
    key = private(name)
    messages = set()
    for blob in (b"", b"\x00", b"\x00" * 28, b"\xff" * 384, b"\x00" * 1000):
        with pytest.raises(DecryptionFailed) as info:
            key.decrypt(blob, b"")
        messages.add(info.value.detail)
        assert info.value.__cause__ is None
    with pytest.raises(DecryptionFailed) as info:
        key.decrypt("text", b"")  # type: ignore[arg-type]
    messages.add(info.value.detail)
    assert messages == {"decryption failed"}


def test_aead_blob_layout() -> None:
    key = private("AES_256_GCM")
    blob = key.encrypt(b"abc", b"")
    assert len(blob) == 12 + 3 + 16
    assert key.encrypt(b"abc", b"")[:12] != blob[:12]


def test_random_bytes() -> None:
    assert len(random_bytes(1)) == 1
    assert len(random_bytes(65536)) == 65536
    assert random_bytes(32) != random_bytes(32)
    for bad in (0, -1, 65537, True, 1.5, "3"):
        with pytest.raises(InvalidArgument):
            random_bytes(bad)  # type: ignore[arg-type]


def test_generate_and_load_refuse_foreign_specs() -> None:
    from keykeeper.crypto import AlgorithmSpec

    fake = AlgorithmSpec("X", Purpose.ENCRYPT, "rot13", 8, 0, False, False, False, None)
    with pytest.raises(InvalidArgument):
        generate_material(fake)
    with pytest.raises(InvalidArgument):
        load_private(fake, b"")
    with pytest.raises(InvalidArgument):
        load_public(fake, b"")
