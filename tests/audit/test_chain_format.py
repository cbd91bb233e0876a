"""The record format: canonical bytes, HMACs, signatures, keys derived from the root key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from keykeeper.audit.chain import INFO_FIELD, INFO_HMAC, INFO_SIGN, AuditKeys, Chain, encode_line
from keykeeper.audit.records import CHECKPOINT, AuditRecord
from keykeeper.audit.verify import ZERO_HASH, canonical_bytes, line_hash, load_public_key
from keykeeper.custody.keyring import Custody
from keykeeper.errors import Sealed


def _keys() -> AuditKeys:
    custody = Custody()
    custody.unseal(os.urandom(32))
    return AuditKeys.derive(custody.derive)


def test_custody_derive_is_hkdf_stable_and_sealed_refuses() -> None:
    root = os.urandom(32)
    a, b = Custody(), Custody()
    a.unseal(root)
    b.unseal(root)
    assert a.derive(INFO_HMAC) == b.derive(INFO_HMAC)          # every node, every unseal
    assert len({a.derive(i) for i in (INFO_HMAC, INFO_FIELD, INFO_SIGN)}) == 3
    assert len(a.derive(b"x", 64)) == 64 and root not in a.derive(b"x", 64)
    a.seal()
    with pytest.raises(Sealed):
        a.derive(INFO_HMAC)


def test_line_authenticators_come_last_and_cover_the_canonical_bytes() -> None:
    keys = _keys()
    rec = AuditRecord("node", 1, ZERO_HASH, "2026-01-01T00:00:00Z", "encrypt", "success",
                      principal="app", context={"tenant": keys.field("acme")})
    plain = encode_line(rec, None)
    assert b'"hmac"' not in plain and canonical_bytes(plain) == plain
    line = encode_line(rec, keys)
    assert line.endswith(b'"}') and json.loads(line)["hmac"]
    assert canonical_bytes(line) == plain
    assert hmac.new(keys.record_key, plain, hashlib.sha256).hexdigest() == json.loads(line)["hmac"]
    signed = encode_line(msgspec.structs.replace(rec, operation=CHECKPOINT), keys, sign=True)
    doc = json.loads(signed)
    assert list(doc)[-2:] == ["hmac", "signature"]
    Ed25519PublicKey.from_public_bytes(keys.public_raw).verify(
        base64.b64decode(doc["signature"]), canonical_bytes(signed))
    assert load_public_key(keys.public_pem()) == keys.public_raw
    assert load_public_key(keys.public_b64) == keys.public_raw


def test_field_hmac_is_deterministic_keyed_and_hides_the_value() -> None:
    keys, other = _keys(), _keys()
    value = keys.field("kk.secret-token")
    assert value.startswith("hmac-sha256:") and "secret" not in value
    assert value == keys.field("kk.secret-token") != other.field("kk.secret-token")
    assert keys.field("a") != keys.field("b")


def test_chain_state_advances_with_the_line_hash() -> None:
    chain = Chain("n")
    assert chain.head() == ("n", 0, ZERO_HASH, None)
    chain.advance(1, b'{"x":1}')
    chain.advance(2, b'{"x":2}', checkpoint=True)
    assert chain.head() == ("n", 2, line_hash(b'{"x":2}'), 2)
