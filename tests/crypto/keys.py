"""Test keys, generated once per process (RSA-4096 generation takes about a second)."""

from __future__ import annotations

import functools

from keykeeper.crypto import (
    ALGORITHMS,
    AlgorithmSpec,
    KeyHandle,
    PublicKeyHandle,
    generate_material,
    get_spec,
    load_private,
    load_public,
)
from keykeeper.crypto.registry import Purpose


@functools.cache
def material(name: str) -> bytes:
    return generate_material(get_spec(name))


@functools.cache
def private(name: str) -> KeyHandle:
    return load_private(get_spec(name), material(name))


@functools.cache
def public(name: str) -> PublicKeyHandle:
    return load_public(get_spec(name), private(name).public_key_pem().encode())


def names(purpose: Purpose | None = None, *, asymmetric: bool | None = None) -> list[str]:
    """Key algorithms (stored data, purpose store, is never generated: tests/crypto/
    test_stored.py), filtered."""
    return sorted(
        name
        for name, spec in ALGORITHMS.items()
        if (spec.purpose == purpose if purpose is not None else spec.purpose != Purpose.STORE)
        and (asymmetric is None or spec.asymmetric == asymmetric)
    )


def specs() -> list[AlgorithmSpec]:
    return [ALGORITHMS[n] for n in names()]
