"""encrypt_stream / decrypt_stream over a fake key service (no HTTP)."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping

import pytest

from keykeeper.client import DataKey, DecryptResult, decrypt_stream, encrypt_stream
from keykeeper.client.envelope import key_id_of
from keykeeper.errors import DecryptionFailed, InvalidArgument, NotFound


class FakeKms:
    """Wraps data keys as 'keykeeper:v1:<id>:1:<b64(key)>|<context>' (test only)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def generate_data_key(
        self,
        key: str,
        *,
        key_spec: str = "AES_256",
        context: Mapping[str, str] | None = None,
        include_plaintext: bool = True,
    ) -> DataKey:
        self.calls.append(("data-key", key))
        assert key_spec == "AES_256"
        raw = os.urandom(32)
        ctx = ",".join(f"{k}={v}" for k, v in sorted((context or {}).items()))
        wrapped = f"keykeeper:v1:k_{key}:1:{base64.b64encode(raw).decode()}.{ctx}"
        return DataKey(ciphertext=wrapped, key_version=1, plaintext=raw)

    def decrypt(
        self, key: str, ciphertext: str, *, context: Mapping[str, str] | None = None
    ) -> DecryptResult:
        self.calls.append(("decrypt", key))
        if not key.startswith("k_"):
            raise NotFound(f"key {key!r} not found")
        body = ciphertext.split(":")[4]
        raw, ctx = body.split(".")
        if ctx != ",".join(f"{k}={v}" for k, v in sorted((context or {}).items())):
            raise DecryptionFailed()
        return DecryptResult(plaintext=base64.b64decode(raw), key_version=1)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096, 50_000])
def test_round_trip(size: int) -> None:
    kms = FakeKms()
    data = os.urandom(size)
    enc = io.BytesIO()
    assert (
        encrypt_stream(kms, "files", io.BytesIO(data), enc, context={"f": "a"}, chunk_size=4096)
        == size
    )
    dec = io.BytesIO()
    enc.seek(0)
    assert decrypt_stream(kms, enc, dec, context={"f": "a"}) == size
    assert dec.getvalue() == data
    assert kms.calls == [("data-key", "files"), ("decrypt", "k_files")]


def test_wrong_context_fails() -> None:
    kms = FakeKms()
    enc = io.BytesIO()
    encrypt_stream(kms, "files", io.BytesIO(b"x"), enc, context={"f": "a"})
    enc.seek(0)
    with pytest.raises(DecryptionFailed):
        decrypt_stream(kms, enc, io.BytesIO(), context={"f": "b"})


def test_bad_chunk_size_is_refused_before_calling_the_server() -> None:
    kms = FakeKms()
    with pytest.raises(InvalidArgument):
        encrypt_stream(kms, "files", io.BytesIO(b"x"), io.BytesIO(), chunk_size=0)
    assert kms.calls == []


def test_key_id_of() -> None:
    assert key_id_of("keykeeper:v1:k_01:3:AAAA") == "k_01"
    for bad in ("", "keykeeper:v1::1:A", "vault:v1:x:1:A", "keykeeper:v1:k"):
        with pytest.raises(DecryptionFailed):
            key_id_of(bad)
