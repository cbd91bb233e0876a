"""Shamir secret sharing over GF(2^8), as Vault's ``shamir`` package does it.

A secret of ``n`` bytes is split byte by byte: for each byte a random polynomial of degree
``threshold - 1`` whose constant term is that byte, evaluated at each share's x-coordinate.
Arithmetic is in GF(2^8) with the AES reduction polynomial x^8 + x^4 + x^3 + x + 1
(FIPS 197 §4.2), so any ``threshold`` shares recover the secret by Lagrange interpolation
at x = 0 and fewer reveal nothing about it (Shamir, "How to share a secret", 1979).

Share layout (Vault's): the ``n`` y-values followed by one byte, the x-coordinate
(1..255, distinct, drawn at random). A share is ``len(secret) + 1`` bytes.

Coefficients and x-coordinates come from the OS CSPRNG (:func:`os.urandom`). The table
lookups are not constant-time; splitting and combining run at init, unseal, rekey and
backup restore only, never on the request path, and on a local secret.
"""

from __future__ import annotations

import os

from keykeeper.errors import InvalidArgument

__all__ = ["MAX_SHARES", "combine", "split"]

MAX_SHARES = 255

# exp/log tables of GF(2^8) with generator 3 (x + 1).
_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x ^= (_x << 1) ^ (0x11B if _x & 0x80 else 0)  # multiply by 3 = x * 2 + x
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def _evaluate(coefficients: bytes, x: int) -> int:
    """Horner's rule; ``coefficients[0]`` is the constant term."""
    out = 0
    for c in reversed(coefficients):
        out = _mul(out, x) ^ c
    return out


def split(secret: bytes, shares: int, threshold: int) -> list[bytes]:
    """Split ``secret`` (1+ bytes) into ``shares`` shares, any ``threshold`` of which
    recover it. ``2 <= threshold <= shares <= 255``; ``threshold == shares == 1`` is
    allowed too and returns the secret with an x-coordinate. InvalidArgument otherwise."""
    if not secret:
        raise InvalidArgument("cannot split an empty secret")
    if not 1 <= threshold <= shares <= MAX_SHARES:
        raise InvalidArgument(f"shares must be 1..{MAX_SHARES} and the threshold 1..shares, "
                              f"got {shares} shares with threshold {threshold}")
    if threshold == 1 and shares > 1:
        raise InvalidArgument("a threshold of 1 with several shares gives each holder the "
                              "whole secret; use a threshold of at least 2")
    xs: list[int] = []
    while len(xs) < shares:  # distinct, random, non-zero x-coordinates
        x = os.urandom(1)[0]
        if x != 0 and x not in xs:
            xs.append(x)
    ys = [bytearray(len(secret)) for _ in range(shares)]
    for i, byte in enumerate(secret):
        coefficients = bytes([byte]) + os.urandom(threshold - 1)
        for j, x in enumerate(xs):
            ys[j][i] = _evaluate(coefficients, x)
    return [bytes(y) + bytes([x]) for y, x in zip(ys, xs, strict=True)]


def combine(shares: list[bytes]) -> bytes:
    """Recover the secret from ``threshold`` or more shares made by :func:`split`.

    InvalidArgument when shares are missing, of unequal length, too short, or share an
    x-coordinate. Too few (or wrong) shares give a wrong secret, not an error: the
    caller checks it (an authenticated unwrap, a digest)."""
    if not shares:
        raise InvalidArgument("no shares given")
    length = len(shares[0])
    if length < 2 or any(len(s) != length for s in shares):
        raise InvalidArgument("shares must all have the same length, of at least 2 bytes")
    xs = [s[-1] for s in shares]
    if 0 in xs or len(set(xs)) != len(xs):
        raise InvalidArgument("shares must be distinct (a share was given twice or is "
                              "malformed)")
    secret = bytearray(length - 1)
    for i in range(length - 1):
        value = 0
        for j, xj in enumerate(xs):  # Lagrange basis polynomial j at x = 0
            basis = 1
            for m, xm in enumerate(xs):
                if m != j:
                    basis = _mul(basis, _div(xm, xm ^ xj))
            value ^= _mul(shares[j][i], basis)
        secret[i] = value
    return bytes(secret)
