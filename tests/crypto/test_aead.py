"""The pure AEAD helpers custody reuses for key wrapping."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keykeeper.crypto import aead_open, aead_seal
from keykeeper.crypto.aead import _seal_with_nonce
from keykeeper.errors import DecryptionFailed, InvalidArgument


@pytest.mark.parametrize("size", [16, 32])
def test_seal_open_round_trip(size: int) -> None:
    key = bytes(range(size))
    blob = aead_seal(key, b"material", b"header")
    assert len(blob) == 12 + 8 + 16
    assert aead_open(key, blob, b"header") == b"material"
    assert AESGCM(key).decrypt(blob[:12], blob[12:], b"header") == b"material"


def test_explicit_nonce_is_byte_exact() -> None:
    key, nonce = b"\x01" * 32, b"\x02" * 12
    assert _seal_with_nonce(key, nonce, b"p", b"a") == nonce + AESGCM(key).encrypt(
        nonce, b"p", b"a"
    )
    with pytest.raises(InvalidArgument):
        _seal_with_nonce(key, b"\x02" * 16, b"p", b"a")


def test_seal_refuses_bad_keys() -> None:
    for key in (b"", b"\x00" * 20, b"\x00" * 33):
        with pytest.raises(InvalidArgument):
            aead_seal(key, b"p", b"")
    with pytest.raises(InvalidArgument):
        aead_seal(b"\x00" * 32, "text", b"")  # type: ignore[arg-type]


def test_open_failures_are_uniform() -> None:
    key = b"\x07" * 32
    blob = aead_seal(key, b"p", b"a")
    for bad_key, bad_blob, bad_aad in (
        (b"\x08" * 32, blob, b"a"),
        (key, blob, b"b"),
        (key, blob[:-1], b"a"),
        (key, blob[:27], b"a"),
        (key, b"", b"a"),
        (b"short", blob, b"a"),
    ):
        with pytest.raises(DecryptionFailed) as info:
            aead_open(bad_key, bad_blob, bad_aad)
        assert info.value.detail == "decryption failed"
