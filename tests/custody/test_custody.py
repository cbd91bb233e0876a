"""Seal, the key hierarchy's associated-data binding, and the handle cache."""

from __future__ import annotations

import os

import pytest

from keykeeper.crypto import generate_material, get_spec
from keykeeper.custody.cache import TTLCache
from keykeeper.custody.keyring import Custody, WrappedVersion
from keykeeper.custody.passphrase import SealedRoot, seal_root_key, unseal_root_key
from keykeeper.errors import Internal, InvalidArgument, Sealed


def test_passphrase_seal_round_trip_and_refusals() -> None:
    root = os.urandom(32)
    sealed = seal_root_key(root, "a long enough passphrase")
    assert root not in sealed.wrapped_root_key
    assert sealed.params.time_cost == 3 and sealed.params.memory_cost_kib == 65536
    again = SealedRoot.from_json(sealed.to_json())
    assert unseal_root_key(again, "a long enough passphrase") == root
    with pytest.raises(InvalidArgument):
        unseal_root_key(again, "a long enough passphrasE")
    with pytest.raises(InvalidArgument):
        seal_root_key(root, "short")


def _custody() -> Custody:
    c = Custody(cache_entries=4, cache_ttl=60)
    c.unseal(os.urandom(32))
    return c


def test_material_is_bound_to_namespace_key_version_and_algorithm() -> None:
    c = _custody()
    kek = c.new_wrapped_kek("ns")
    spec = get_spec("AES_256_GCM")
    wrapped = c.wrap_material("ns", kek, "k-1", 1, spec.name, generate_material(spec))
    ok = c.handle("k-1", 1, lambda: WrappedVersion("ns", kek, spec.name, wrapped))
    assert ok.spec.name == "AES_256_GCM"
    other_kek = c.new_wrapped_kek("other")
    moved = [("k-2", 1, WrappedVersion("ns", kek, spec.name, wrapped)),
             ("k-1", 2, WrappedVersion("ns", kek, spec.name, wrapped)),
             ("k-1", 1, WrappedVersion("ns", kek, "CHACHA20_POLY1305", wrapped)),
             ("k-1", 1, WrappedVersion("other", other_kek, spec.name, wrapped))]
    for key_id, version, w in moved:
        c.drop_key(key_id)
        with pytest.raises(Internal):
            c.handle(key_id, version, lambda w=w: w)  # type: ignore[misc]


def test_kek_is_bound_to_its_namespace() -> None:
    c = _custody()
    kek = c.new_wrapped_kek("alpha")
    spec = get_spec("HMAC_SHA256")
    with pytest.raises(Internal):
        c.wrap_material("beta", kek, "k-1", 1, spec.name, generate_material(spec))


def test_seal_forgets_everything() -> None:
    c = _custody()
    kek = c.new_wrapped_kek("ns")
    spec = get_spec("AES_128_GCM")
    wrapped = c.wrap_material("ns", kek, "k", 1, spec.name, generate_material(spec))
    c.handle("k", 1, lambda: WrappedVersion("ns", kek, spec.name, wrapped))
    assert len(c.handles) == 1
    c.seal()
    assert c.sealed and len(c.handles) == 0
    with pytest.raises(Sealed):
        c.handle("k", 1, lambda: WrappedVersion("ns", kek, spec.name, wrapped))
    with pytest.raises(Sealed):
        c.new_wrapped_kek("ns")


def test_ttl_cache_bounds_and_expiry() -> None:
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(2, 10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts the least recently used: b
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    now[0] = 10.0
    assert cache.get("a") is None and len(cache) == 1
    cache.drop_where(lambda k: k == "c")
    assert len(cache) == 0
    with pytest.raises(ValueError):
        TTLCache(0, 1)
