"""What an outside client does to import or receive keys, with pyca/cryptography only
(no keykeeper code): RSA-OAEP-SHA256 and RSA-AES key wrap (CKM_RSA_AES_KEY_WRAP) of key
material under keykeeper's wrapping public key, and the inverse for exports."""

from __future__ import annotations

import os
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import (
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=None)


def wrap(public_pem: str, material: bytes, algorithm: str) -> bytes:
    public = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    if algorithm == "RSA_OAEP_SHA256":
        return public.encrypt(material, _oaep())
    ephemeral = os.urandom(32)
    return public.encrypt(ephemeral, _oaep()) + aes_key_wrap_with_padding(ephemeral, material)


def unwrap(private: rsa.RSAPrivateKey, blob: bytes, algorithm: str) -> bytes:
    if algorithm == "RSA_OAEP_SHA256":
        return private.decrypt(blob, _oaep())
    k = private.key_size // 8
    return aes_key_unwrap_with_padding(private.decrypt(blob[:k], _oaep()), blob[k:])


@cache
def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, bits)


def spki_pem(private: rsa.RSAPrivateKey) -> str:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
