"""Shamir split/combine over GF(2^8): property tests (hypothesis) and refusals."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keykeeper.custody import shamir
from keykeeper.custody.shamir import combine, split
from keykeeper.errors import InvalidArgument


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, int, int]:
    secret = draw(st.binary(min_size=1, max_size=40))
    shares = draw(st.integers(min_value=2, max_value=12))
    threshold = draw(st.integers(min_value=2, max_value=shares))
    return secret, shares, threshold


@settings(max_examples=150, deadline=None)
@given(cases(), st.randoms(use_true_random=False))
def test_any_threshold_of_the_shares_recovers_the_secret(
        case: tuple[bytes, int, int], rnd: random.Random) -> None:
    secret, n, m = case
    parts = split(secret, n, m)
    assert len(parts) == n and all(len(p) == len(secret) + 1 for p in parts)
    assert len({p[-1] for p in parts}) == n and all(p[-1] != 0 for p in parts)
    for k in (m, rnd.randint(m, n)):
        chosen = rnd.sample(parts, k)
        assert combine(chosen) == secret


@settings(max_examples=60, deadline=None)
@given(cases())
def test_every_threshold_subset_of_a_small_split_recovers(case: tuple[bytes, int, int]) -> None:
    secret, n, m = case
    n, m = min(n, 6), min(m, 6)
    parts = split(secret, n, m)
    for subset in itertools.combinations(parts, m):
        assert combine(list(subset)) == secret


@settings(max_examples=100, deadline=None)
@given(cases())
def test_fewer_than_threshold_shares_do_not_give_the_secret(
        case: tuple[bytes, int, int]) -> None:
    secret, n, m = case
    if len(secret) < 8:
        secret = secret * (8 // len(secret) + 1)  # long enough that a match is not luck
    parts = split(secret, n, m)
    if m > 2:
        assert combine(parts[:m - 1]) != secret
    else:  # one share alone: its y-bytes are not the secret
        assert parts[0][:-1] != secret


def _interpolate_at_zero(points: list[tuple[int, int]]) -> int:
    value = 0
    for j, (xj, yj) in enumerate(points):
        basis = 1
        for m, (xm, _) in enumerate(points):
            if m != j:
                basis = shamir._mul(basis, shamir._div(xm, xm ^ xj))
        value ^= shamir._mul(yj, basis)
    return value


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=2, max_value=5), st.integers(min_value=0, max_value=255))
def test_threshold_minus_one_shares_leave_every_secret_byte_possible(
        threshold: int, byte: int) -> None:
    """Perfect secrecy, checked exhaustively for one byte: for fixed M-1 shares, every one
    of the 256 candidate secret values is consistent with them (a degree M-1 polynomial
    through the M-1 points and (0, candidate) exists for every candidate), so the M-1
    shares say nothing about the byte."""
    parts = split(bytes([byte]), threshold + 1, threshold)
    known = [(p[-1], p[0]) for p in parts[:threshold - 1]]
    spare_x = parts[threshold - 1][-1]
    possible = set()
    for candidate in range(256):
        # The polynomial through (0, candidate) and the known points; evaluate it at a
        # further x: it exists for every candidate, hence the candidate stays possible.
        points = [(0, candidate), *known]
        # Lagrange at spare_x via shifting: interpolate the values at spare_x directly.
        y_spare = 0
        for j, (xj, yj) in enumerate(points):
            basis = 1
            for m, (xm, _) in enumerate(points):
                if m != j:
                    basis = shamir._mul(basis, shamir._div(xm ^ spare_x, xm ^ xj))
            y_spare ^= shamir._mul(yj, basis)
        full = [*known, (spare_x, y_spare)]
        if _interpolate_at_zero(full) == candidate:
            possible.add(candidate)
    assert possible == set(range(256))


def test_each_byte_value_appears_evenly_in_a_single_share() -> None:
    """A single share's y-byte is uniform whatever the secret (threshold 2): over many
    splits of a constant secret every value shows up."""
    seen = {split(b"\x00", 2, 2)[0][0] for _ in range(3000)}
    assert len(seen) > 240


def test_duplicates_and_malformed_shares_are_refused() -> None:
    parts = split(b"secret bytes", 5, 3)
    with pytest.raises(InvalidArgument, match="distinct"):
        combine([parts[0], parts[0], parts[1]])
    same_x = bytes(b ^ 1 for b in parts[1][:-1]) + parts[0][-1:]
    with pytest.raises(InvalidArgument, match="distinct"):
        combine([parts[0], same_x, parts[2]])
    with pytest.raises(InvalidArgument, match="same length"):
        combine([parts[0], parts[1][:-2] + parts[1][-1:], parts[2]])
    with pytest.raises(InvalidArgument):
        combine([b"\x01", b"\x02"])
    with pytest.raises(InvalidArgument):
        combine([])
    zero_x = parts[0][:-1] + b"\x00"
    with pytest.raises(InvalidArgument):
        combine([zero_x, parts[1], parts[2]])
    for n, m in ((3, 4), (0, 0), (256, 3), (5, 1)):
        with pytest.raises(InvalidArgument):
            split(b"x", n, m)
    with pytest.raises(InvalidArgument):
        split(b"", 3, 2)
