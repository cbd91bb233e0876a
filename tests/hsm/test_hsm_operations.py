"""Every HSM operation through the service layer, on SoftHSM2, SQLite and PostgreSQL:
the formats are those of software keys, and signatures verify with pyca/cryptography
from the public key alone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from keykeeper.custody.hsm.handles import HsmAeadKeyHandle
from keykeeper.domain.ciphertext import Ciphertext
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument
from tests.hsm.conftest import HsmNode
from tests.hsm.probe import oaep_sha256_label_missing

MESSAGE = b"a message signed inside the token"


@dataclass(frozen=True)
class EncryptItem:
    plaintext: bytes
    context: dict[str, str] | None = None
    key_version: int | None = None


def _public(node: HsmNode, ref: str) -> object:
    pem, _, _ = node.services.crypto.public_key(node.ctx(), ref)
    return serialization.load_pem_public_key(pem.encode())


@pytest.mark.parametrize("algorithm", ["AES_256_GCM", "AES_128_GCM"])
def test_aes_gcm_encrypt_and_decrypt_run_in_the_token(hsm_node: HsmNode, algorithm: str) -> None:
    key_id = hsm_node.create("data", algorithm)
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    handle = hsm_node.services.lookup.handle(hsm_node.services.lookup.get(ctx, key_id), 1)
    assert isinstance(handle, HsmAeadKeyHandle)
    out = crypto.encrypt(ctx, "data", b"secret payload", {"tenant": "a"})
    parsed = Ciphertext.parse(out.ciphertext)
    assert (parsed.key_id, parsed.version) == (key_id, 1)
    assert len(parsed.body) == 12 + len(b"secret payload") + 16     # nonce || ct || tag
    assert crypto.decrypt(ctx, "data", out.ciphertext, {"tenant": "a"}) == (b"secret payload", 1)
    with pytest.raises(DecryptionFailed):
        crypto.decrypt(ctx, "data", out.ciphertext, {"tenant": "b"})
    tampered = Ciphertext(parsed.key_id, 1, parsed.body[:-1] + bytes([parsed.body[-1] ^ 1]))
    with pytest.raises(DecryptionFailed):
        crypto.decrypt(ctx, "data", tampered.encode())
    # the session that saw the refused tag is still good
    assert crypto.decrypt(ctx, "data", out.ciphertext, {"tenant": "a"})[0] == b"secret payload"
    empty = crypto.encrypt(ctx, "data", b"")
    assert crypto.decrypt(ctx, "data", empty.ciphertext) == (b"", 1)


def test_batch_rewrap_and_data_keys_use_the_token(hsm_node: HsmNode) -> None:
    hsm_node.create("batch", "AES_256_GCM")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    items = [EncryptItem(plaintext=bytes([i]) * i, context={"i": str(i)}) for i in range(5)]
    results = crypto.encrypt_batch(ctx, "batch", items)
    texts = [r.ciphertext for r in results if not isinstance(r, Exception)]
    assert len(texts) == 5 and len(set(texts)) == 5
    for i, text in enumerate(texts):
        assert crypto.decrypt(ctx, "batch", text, {"i": str(i)})[0] == bytes([i]) * i
    rewrapped = crypto.rewrap(ctx, "batch", texts[3], {"i": "3"})
    assert crypto.decrypt(ctx, "batch", rewrapped.ciphertext, {"i": "3"})[0] == b"\x03" * 3
    dk = crypto.data_key(ctx, "batch")
    assert dk.plaintext is not None
    assert crypto.decrypt(ctx, "batch", dk.ciphertext)[0] == dk.plaintext


@pytest.mark.parametrize(("algorithm", "size", "hash_cls"), [
    ("ECDSA_P256_SHA256", 32, hashes.SHA256), ("ECDSA_P384_SHA384", 48, hashes.SHA384)])
def test_ecdsa_signatures_verify_with_pyca(hsm_node: HsmNode, algorithm: str, size: int,
                                           hash_cls: type[hashes.SHA256]) -> None:
    hsm_node.create("signer", algorithm)
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    public = _public(hsm_node, "signer")
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.key_size == size * 8
    der, _ = crypto.sign(ctx, "signer", MESSAGE, prehashed=False, signature_format=None)
    public.verify(der, MESSAGE, ec.ECDSA(hash_cls()))
    raw, _ = crypto.sign(ctx, "signer", MESSAGE, prehashed=False, signature_format="p1363")
    assert len(raw) == 2 * size                       # fixed width, zero-padded r || s
    r, s = int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    public.verify(utils.encode_dss_signature(r, s), MESSAGE, ec.ECDSA(hash_cls()))
    digest = hashlib.new(hash_cls.name, MESSAGE).digest()
    pre, _ = crypto.sign(ctx, "signer", digest, prehashed=True, signature_format=None)
    public.verify(pre, MESSAGE, ec.ECDSA(hash_cls()))
    for sig, fmt in ((der, None), (raw, "p1363")):
        assert crypto.verify(ctx, "signer", MESSAGE, sig, prehashed=False,
                             signature_format=fmt)[0] is True
    assert crypto.verify(ctx, "signer", MESSAGE + b"!", der, prehashed=False,
                         signature_format=None)[0] is False
    with pytest.raises(InvalidArgument, match="digest must be"):
        crypto.sign(ctx, "signer", b"short", prehashed=True, signature_format=None)


def test_rsa_pss_signatures_verify_with_pyca(hsm_node: HsmNode) -> None:
    hsm_node.create("pss", "RSA_PSS_3072_SHA256")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    public = _public(hsm_node, "pss")
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
    assert public.public_numbers().e == 65537
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    sig, version = crypto.sign(ctx, "pss", MESSAGE, prehashed=False, signature_format=None)
    assert len(sig) == 384 and version == 1
    public.verify(sig, MESSAGE, pss, hashes.SHA256())
    pre, _ = crypto.sign(ctx, "pss", hashlib.sha256(MESSAGE).digest(), prehashed=True,
                         signature_format=None)
    public.verify(pre, MESSAGE, pss, hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public.verify(sig, MESSAGE + b"!", pss, hashes.SHA256())
    assert crypto.verify(ctx, "pss", MESSAGE, sig, prehashed=False,
                         signature_format=None)[0] is True
    with pytest.raises(InvalidArgument, match="p1363"):
        crypto.sign(ctx, "pss", MESSAGE, prehashed=False, signature_format="p1363")


@pytest.mark.parametrize(("algorithm", "size"), [
    ("HMAC_SHA256", 32), ("HMAC_SHA384", 48), ("HMAC_SHA512", 64)])
def test_hmac_sign_and_verify_run_in_the_token(hsm_node: HsmNode, algorithm: str,
                                               size: int) -> None:
    hsm_node.create("mac", algorithm)
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    tag, version = crypto.mac(ctx, "mac", MESSAGE)
    assert len(tag) == size and version == 1
    assert crypto.mac(ctx, "mac", MESSAGE)[0] == tag           # deterministic
    assert crypto.verify_mac(ctx, "mac", MESSAGE, tag)[0] is True
    assert crypto.verify_mac(ctx, "mac", MESSAGE + b"!", tag)[0] is False
    assert crypto.verify_mac(ctx, "mac", MESSAGE, tag[:-1])[0] is False   # no truncation
    assert crypto.verify_mac(ctx, "mac", MESSAGE, bytes(size))[0] is False


def test_rsa_oaep_round_trip_with_the_public_key(hsm_node: HsmNode) -> None:
    missing = oaep_sha256_label_missing(hsm_node.soft)
    if missing:
        pytest.skip(missing)
    hsm_node.create("oaep", "RSA_OAEP_3072_SHA256")
    crypto, ctx = hsm_node.services.crypto, hsm_node.ctx()
    out = crypto.encrypt(ctx, "oaep", b"wrapped secret", {"a": "b"})
    assert crypto.decrypt(ctx, "oaep", out.ciphertext, {"a": "b"})[0] == b"wrapped secret"
    with pytest.raises(DecryptionFailed):
        crypto.decrypt(ctx, "oaep", out.ciphertext, {"a": "c"})


def test_rsa_oaep_is_refused_at_creation_by_a_token_without_it(hsm_node: HsmNode) -> None:
    """SoftHSM 2.6 does OAEP with SHA-1 and no label only: the pairwise consistency test
    refuses the key at creation (409), and leaves nothing on the token."""
    if not oaep_sha256_label_missing(hsm_node.soft):
        pytest.skip("this token does RSA-OAEP with SHA-256 and a label")
    from tests.hsm.probe import object_count

    before = object_count(hsm_node.soft)
    with pytest.raises(FailedPrecondition, match="RSA_OAEP_3072_SHA256"):
        hsm_node.create("oaep", "RSA_OAEP_3072_SHA256")
    assert object_count(hsm_node.soft) == before
    with pytest.raises(Exception, match="not found"):
        hsm_node.services.keys.get(hsm_node.ctx(), "oaep")
