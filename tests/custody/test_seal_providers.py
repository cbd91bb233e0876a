"""Seal providers in custody/: the share collector, the HSM root on SoftHSM2, and a
custody that unwraps KEKs wrapped by either root."""

from __future__ import annotations

import base64
import os

import pytest

from keykeeper.custody.hsm.token import HsmConfig, Token
from keykeeper.custody.keyring import Custody
from keykeeper.custody.root import HsmRoot, is_hsm_blob
from keykeeper.custody.seal_pkcs11 import SealedPkcs11, open_in_hsm, seal_in_hsm
from keykeeper.custody.seal_shamir import (
    SealedShamir,
    ShareCollector,
    open_with_key,
    seal_with_shares,
)
from keykeeper.custody.shamir import combine
from keykeeper.errors import FailedPrecondition, Internal, InvalidArgument, Unavailable
from tests.support.softhsm import LIBRARY, SoftToken, new_token


def test_shamir_seal_round_trip_and_collector() -> None:
    root = os.urandom(32)
    sealed, shares = seal_with_shares(root, 4, 3)
    again = SealedShamir.from_json(sealed.to_json())
    assert (again.shares, again.threshold) == (4, 3)
    assert all(s not in str(sealed.to_json()) for s in shares)
    c = ShareCollector()
    nonce = c.progress(3).nonce
    assert c.add(shares[0], 3, nonce) is None
    with pytest.raises(InvalidArgument, match="already given"):
        c.add(shares[0], 3)
    assert c.add(shares[3], 3) is None and c.progress(3).progress == 2
    key = c.add(shares[1], 3)
    assert key is not None and open_with_key(sealed, bytes(key)) == root
    assert c.progress(3).progress == 0 and c.progress(3).nonce != nonce
    with pytest.raises(FailedPrecondition):
        c.add(shares[2], 3, nonce)
    # A wrong combination is one error from the unwrap.
    forged = base64.b64encode(os.urandom(32) + base64.b64decode(shares[2])[-1:]).decode()
    c.add(shares[0], 3)
    c.add(shares[1], 3)
    bad = c.add(forged, 3)
    assert bad is not None
    with pytest.raises(InvalidArgument, match="do not combine"):
        open_with_key(sealed, bytes(bad))
    assert combine([base64.b64decode(s) for s in shares[:3]]) != bytes(bad)


def _token(soft: SoftToken, pin: str | None = None) -> Token:
    return Token(HsmConfig(library=LIBRARY, token_label=soft.label, pin=pin or soft.pin))


def test_hsm_root_wraps_in_the_token_and_custody_reads_both_roots() -> None:
    soft_token = new_token()
    token = _token(soft_token)
    secret = os.urandom(32)
    sealed, root = seal_in_hsm(token, secret)
    record = SealedPkcs11.from_json(sealed.to_json())
    assert open_in_hsm(token, record)[0] == secret
    assert secret not in sealed.wrapped_root_secret
    software = Custody(cache_entries=2, cache_ttl=10)
    software.unseal(secret)
    soft_kek = software.new_wrapped_kek("a")
    hsm = Custody(cache_entries=2, cache_ttl=10, hsm=token)
    hsm.unseal(secret, root)
    assert hsm.root_id == root.root_id and software.root_id == "software"
    hsm_kek = hsm.new_wrapped_kek("b")
    assert is_hsm_blob(hsm_kek) and not is_hsm_blob(soft_kek)
    # Either root's KEKs unwrap on a node using the HSM root (a rekey in flight).
    assert len(hsm.unwrap_kek("a", soft_kek)) == 32 and len(hsm.unwrap_kek("b", hsm_kek)) == 32
    with pytest.raises((Internal, Unavailable)):
        hsm.unwrap_kek("a", hsm_kek)            # bound to its namespace
    with pytest.raises(Internal):
        software.unwrap_kek("b", hsm_kek)       # a node without the HSM root refuses
    # Another key id, a wrong PIN: fail closed.
    with pytest.raises(Internal):
        HsmRoot(token, os.urandom(16)).unwrap(hsm_kek, b"x")
    missing = os.urandom(16)                    # a key the token does not hold
    with pytest.raises(Unavailable):
        HsmRoot(token, missing).unwrap(hsm_kek[:4] + missing + hsm_kek[20:], b"x")
    with pytest.raises(Unavailable):
        open_in_hsm(_token(soft_token, "wrong-pin"), record)
