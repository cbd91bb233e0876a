"""The KKENV1 framing, without a server: round trips and every kind of tampering."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keykeeper.client import framing
from keykeeper.client.framing import Header, decrypt_body, encrypt_body, read_header
from keykeeper.errors import DecryptionFailed, InvalidArgument

KEY = bytes(range(32))
WRAPPED = "keykeeper:v1:k_01:1:AAAA"


def seal(data: bytes, chunk_size: int, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    n = encrypt_body(key, Header(chunk_size=chunk_size, wrapped_key=WRAPPED), io.BytesIO(data), out)
    assert n == len(data)
    return out.getvalue()


def open_(blob: bytes, key: bytes = KEY) -> bytes:
    src = io.BytesIO(blob)
    header, header_bytes = read_header(src)
    out = io.BytesIO()
    n = decrypt_body(key, header, header_bytes, src, out)
    assert n == len(out.getvalue())
    return out.getvalue()


def header_len() -> int:
    return 22 + len(WRAPPED)


def chunks_of(blob: bytes, chunk_size: int) -> tuple[bytes, list[bytes]]:
    head, body = blob[: header_len()], blob[header_len() :]
    full = chunk_size + 16
    return head, [body[i : i + full] for i in range(0, len(body), full)]


class Trickle(io.RawIOBase):
    """A pipe-like reader that returns at most 3 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(min(n, 3) if n >= 0 else 3)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600), chunk_size=st.integers(1, 64))
def test_round_trip_any_size(data: bytes, chunk_size: int) -> None:
    assert open_(seal(data, chunk_size)) == data


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 48, 100])
def test_round_trip_edges_and_exact_multiples(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data, 16)
    assert open_(blob) == data
    _, chunks = chunks_of(blob, 16)
    expected = max(1, -(-size // 16))  # exact multiples get no extra empty chunk
    assert len(chunks) == expected


def test_header_layout() -> None:
    blob = seal(b"hello", 16)
    assert blob[:6] == b"KKENV1"
    assert blob[6] == 1 and blob[7] == 1
    assert int.from_bytes(blob[8:12], "big") == 16
    assert int.from_bytes(blob[20:22], "big") == len(WRAPPED)
    assert blob[22 : 22 + len(WRAPPED)] == WRAPPED.encode()
    assert len(blob) == header_len() + 5 + 16


def test_short_reads_from_pipes() -> None:
    data = os.urandom(1000)
    out = io.BytesIO()
    encrypt_body(KEY, Header(chunk_size=64, wrapped_key=WRAPPED), Trickle(data), out)  # type: ignore[arg-type]
    src = Trickle(out.getvalue())
    header, hb = read_header(src)  # type: ignore[arg-type]
    back = io.BytesIO()
    decrypt_body(KEY, header, hb, src, back)  # type: ignore[arg-type]
    assert back.getvalue() == data


def test_fresh_nonce_prefix_per_header() -> None:
    assert seal(b"x", 4)[12:20] != seal(b"x", 4)[12:20]


def test_every_truncation_detected() -> None:
    blob = seal(os.urandom(40), 8)
    for cut in range(len(blob)):
        with pytest.raises(DecryptionFailed):
            open_(blob[:cut])


def test_every_bit_flip_detected() -> None:
    blob = seal(os.urandom(20), 8)
    for i in range(len(blob)):
        for bit in (0, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises(DecryptionFailed):
                open_(bytes(bad))


def test_reorder_duplicate_drop_append_detected() -> None:
    blob = seal(os.urandom(40), 8)  # 5 full chunks
    head, chunks = chunks_of(blob, 8)
    assert len(chunks) == 5
    variants = [
        [chunks[1], chunks[0], *chunks[2:]],  # swap
        [*chunks[:4], chunks[3], chunks[4]],  # duplicate
        [*chunks[:2], *chunks[3:]],  # drop a middle chunk
        chunks[:4],  # drop the final chunk (boundary truncation)
        [*chunks, chunks[4]],  # duplicate the final chunk
        [*chunks[:4], chunks[4], b"x"],  # trailing byte
    ]
    for parts in variants:
        with pytest.raises(DecryptionFailed):
            open_(head + b"".join(parts))


def test_chunks_do_not_move_between_files() -> None:
    a, b = seal(os.urandom(16), 8), seal(os.urandom(16), 8)
    head_a, chunks_a = chunks_of(a, 8)
    _, chunks_b = chunks_of(b, 8)
    with pytest.raises(DecryptionFailed):
        open_(head_a + chunks_a[0] + chunks_b[1])


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=200),
    chunk_size=st.integers(1, 32),
    pos=st.integers(min_value=0),
    flip=st.integers(1, 255),
)
def test_any_byte_change_detected(data: bytes, chunk_size: int, pos: int, flip: int) -> None:
    blob = bytearray(seal(data, chunk_size))
    blob[pos % len(blob)] ^= flip
    with pytest.raises(DecryptionFailed):
        open_(bytes(blob))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=200), chunk_size=st.integers(1, 32), st_=st.data())
def test_any_chunk_permutation_or_duplicate_detected(
    data: bytes, chunk_size: int, st_: st.DataObject
) -> None:
    blob = seal(data, chunk_size)
    head, chunks = chunks_of(blob, chunk_size)
    idx = list(range(len(chunks)))
    new = st_.draw(st.lists(st.sampled_from(idx), min_size=0, max_size=len(idx) + 2))
    if new == idx:
        return
    with pytest.raises(DecryptionFailed):
        open_(head + b"".join(chunks[i] for i in new))


def test_wrong_key_fails() -> None:
    with pytest.raises(DecryptionFailed):
        open_(seal(b"data", 8), key=bytes(32))
    with pytest.raises(DecryptionFailed):
        open_(seal(b"data", 8), key=b"short")


def test_not_an_envelope() -> None:
    for blob in (b"", b"KKENV1", b"PK\x03\x04" + bytes(100), b"KKENV1\x02" + bytes(100)):
        with pytest.raises(DecryptionFailed):
            open_(blob)


def test_header_validation() -> None:
    with pytest.raises(InvalidArgument):
        Header(chunk_size=0, wrapped_key=WRAPPED)
    with pytest.raises(InvalidArgument):
        Header(chunk_size=framing.MAX_CHUNK_SIZE + 1, wrapped_key=WRAPPED)
    with pytest.raises(InvalidArgument):
        Header(chunk_size=8, wrapped_key="")
    with pytest.raises(InvalidArgument):
        Header(chunk_size=8, wrapped_key="é")
    with pytest.raises(InvalidArgument):
        encrypt_body(
            b"short", Header(chunk_size=8, wrapped_key=WRAPPED), io.BytesIO(), io.BytesIO()
        )


def test_constant_memory_reads() -> None:
    """The encryptor never asks for more than one chunk per read."""

    class Spy(io.BytesIO):
        biggest = 0

        def read(self, n: int | None = -1) -> bytes:
            assert n is not None and n >= 0
            Spy.biggest = max(Spy.biggest, n)
            return super().read(n)

    encrypt_body(
        KEY, Header(chunk_size=1024, wrapped_key=WRAPPED), Spy(bytes(100_000)), io.BytesIO()
    )
    assert Spy.biggest == 1024
