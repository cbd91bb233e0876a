"""The ciphertext format (docs/ciphertext-format.md): round trips and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keykeeper.domain.ciphertext import Ciphertext, associated_data, canonical_context, header
from keykeeper.errors import DecryptionFailed

KEY_ID = "k-" + "0123456789abcdef" * 2


@given(st.integers(1, 10**9), st.binary(min_size=1, max_size=2048))
def test_round_trip(version: int, body: bytes) -> None:
    text = Ciphertext(KEY_ID, version, body).encode()
    assert text.startswith(f"keykeeper:v1:{KEY_ID}:{version}:")
    assert Ciphertext.parse(text) == Ciphertext(KEY_ID, version, body)


@pytest.mark.parametrize("text", [
    "", "keykeeper:v1:", f"keykeeper:v2:{KEY_ID}:1:AAAA", f"keykeeper:v1:{KEY_ID}:0:AAAA",
    f"keykeeper:v1:{KEY_ID}:01:AAAA", f"keykeeper:v1:{KEY_ID}:-1:AAAA",
    f"keykeeper:v1:{KEY_ID}:1:AAA", f"keykeeper:v1:{KEY_ID}:1:AA AA",
    f"keykeeper:v1:{KEY_ID}:1:AAAA\n", f"keykeeper:v1:{KEY_ID.upper()}:1:AAAA",
    f"keykeeper:v1:{KEY_ID}:1:-_-_", f"vault:v1:{KEY_ID}:1:AAAA", f"keykeeper:v1:{KEY_ID}:1:",
    f"keykeeper:v1:{KEY_ID}:12345678901:AAAA",
])
def test_malformed_is_the_uniform_error(text: str) -> None:
    with pytest.raises(DecryptionFailed) as info:
        Ciphertext.parse(text)
    assert str(info.value) == "decryption failed"


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=8))
def test_context_is_canonical(context: dict[str, str]) -> None:
    reordered = dict(reversed(list(context.items())))
    assert canonical_context(context) == canonical_context(reordered)
    assert associated_data(KEY_ID, 3, context).startswith(header(KEY_ID, 3).encode() + b"\x00")


def test_empty_context_equals_none() -> None:
    assert canonical_context(None) == canonical_context({}) == b"{}"
    assert associated_data(KEY_ID, 1, {"a": "b"}) != associated_data(KEY_ID, 1, None)
    assert associated_data(KEY_ID, 1, None) != associated_data(KEY_ID, 2, None)
