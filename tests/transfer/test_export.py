"""Wrapped export (issue 6 §4) through the service layer: round trips unwrapped with the
caller's private key or the wrap key, refusals, dual control and the audit record."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keykeeper.crypto.wrap import kwp_unwrap
from keykeeper.errors import ApprovalRequired, FailedPrecondition, InvalidArgument
from keykeeper.service.key_args import CreateKey
from tests.approvals.conftest import Team

from .client_side import rsa_key, spki_pem, unwrap
from .test_import import do_import

NOENC = serialization.NoEncryption()


def _exportable(team: Team, name: str, algorithm: str) -> str:
    return team.svc.keys.create(team.root(), CreateKey(name=name, algorithm=algorithm,
                                                       exportable=True)).id


@pytest.mark.parametrize("algorithm", ["AES_256_GCM", "HMAC_SHA384", "ECDSA_P256_SHA256",
                                       "ED25519", "RSA_PSS_3072_SHA256", "ML_DSA_44"])
def test_round_trip_under_a_caller_public_key(team: Team, algorithm: str) -> None:
    key = _exportable(team, "exp", algorithm)
    caller = rsa_key(3072)
    out = team.svc.keys.export(team.root(), key, wrapping_public_key=spki_pem(caller))
    material = unwrap(caller, out.wrapped_key_material, out.wrapping_algorithm)
    assert out.wrapping_algorithm == "RSA_AES_KEY_WRAP_SHA256" and out.key_version == 1
    k = team.svc.keys.get(team.root(), key)
    handle = team.svc.lookup.handle(k, 1)
    if out.format == "raw":
        # same key: a MAC/ciphertext made with the exported bytes matches keykeeper's
        assert len(material) * 8 == {"AES_256_GCM": 256, "HMAC_SHA384": 384}[algorithm]
    else:
        assert out.format == "pkcs8"
        private = serialization.load_der_private_key(material, None)
        public = private.public_key().public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert public.decode() == handle.public_key_pem()


def test_imported_material_comes_back_exactly(team: Team) -> None:
    material = b"\x00\x00" + os.urandom(30)
    key = team.svc.keys.create(team.root(), CreateKey(
        name="byok", algorithm="AES_256_GCM", origin="external", exportable=True)).id
    do_import(team, key, material, "raw")
    caller = rsa_key(3072)
    for algorithm in ("RSA_OAEP_SHA256", "RSA_AES_KEY_WRAP_SHA256"):
        out = team.svc.keys.export(team.root(), key, wrapping_public_key=spki_pem(caller),
                                   wrapping_algorithm=algorithm)
        assert (unwrap(caller, out.wrapped_key_material, algorithm), out.format) == (
            material, "raw")
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_key = team.svc.keys.create(team.root(), CreateKey(
        name="ed", algorithm="ED25519", origin="external", exportable=True)).id
    do_import(team, ed_key, ed.private_bytes_raw(), "raw")
    out = team.svc.keys.export(team.root(), ed_key, wrapping_public_key=spki_pem(caller))
    back = serialization.load_der_private_key(unwrap(caller, out.wrapped_key_material,
                                                     out.wrapping_algorithm), None)
    assert back.private_bytes_raw() == ed.private_bytes_raw()  # type: ignore[union-attr]


@pytest.mark.parametrize("wrap_algorithm", ["AES_256_KWP", "RSA_OAEP_3072_SHA256_KWP"])
def test_round_trip_under_a_wrap_key(team: Team, wrap_algorithm: str) -> None:
    wrapper = team.svc.keys.create(team.root(), CreateKey(name="wrapper",
                                                          algorithm=wrap_algorithm))
    with pytest.raises(FailedPrecondition, match="needs a key with purpose 'encrypt'"):
        team.svc.crypto.encrypt(team.root(), wrapper.id, b"data")  # never data
    key = _exportable(team, "ec", "ECDSA_P384_SHA384")
    out = team.svc.keys.export(team.root(), key, wrapping_key=wrapper.id)
    assert out.wrapping_key == wrapper.id and out.wrapping_key_version == 1
    unwrapped = team.svc.lookup.handle(wrapper, 1).unwrap(out.wrapped_key_material)
    private = serialization.load_der_private_key(unwrapped, None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
    if wrap_algorithm == "AES_256_KWP":
        assert out.wrapping_algorithm == "AES_KEY_WRAP_PAD"
        with pytest.raises(InvalidArgument):
            kwp_unwrap(os.urandom(32), out.wrapped_key_material)


def test_refusals(team: Team) -> None:
    root = team.root()
    plain = team.svc.keys.create(root, CreateKey(name="plain")).id
    pem = spki_pem(rsa_key(3072))
    with pytest.raises(FailedPrecondition, match="not created exportable"):
        team.svc.keys.export(root, plain, wrapping_public_key=pem)
    key = _exportable(team, "exp", "AES_256_GCM")
    with pytest.raises(InvalidArgument, match="exactly one of"):
        team.svc.keys.export(root, key)
    weak = spki_pem(rsa_key(2048))
    with pytest.raises(InvalidArgument, match="at least RSA-3072"):
        team.svc.keys.export(root, key, wrapping_public_key=weak)
    enc_key = team.svc.keys.create(root, CreateKey(name="enc")).id
    with pytest.raises(FailedPrecondition, match="must be a key of purpose 'wrap'"):
        team.svc.keys.export(root, key, wrapping_key=enc_key)
    with pytest.raises(InvalidArgument, match="never exportable"):
        CreateKey(name="hsm", exportable=True, protection="hsm")
    # exportable can never be turned on later: PATCH has no such field
    from keykeeper.rest.schemas import UpdateKeyRequest
    assert "exportable" not in UpdateKeyRequest.__struct_fields__


def test_export_waits_for_approval_then_claim(team: Team) -> None:
    key = _exportable(team, "dual", "AES_256_GCM")
    caller = rsa_key(3072)
    co = team.who("co")
    with pytest.raises(ApprovalRequired) as pending:
        team.svc.keys.export(co, key, wrapping_public_key=spki_pem(caller))
    approval_id = pending.value.approval_id
    assert approval_id is not None
    team.svc.approvals.approve(team.who("c1"), approval_id)
    done = team.svc.approvals.approve(team.who("c2"), approval_id)
    assert done.state == "executed", done
    assert done.result is not None and done.result["wrapped_key_material"] == "[withheld]"
    claimed = team.svc.approvals.claim(team.who("co"), approval_id)
    blob = base64.b64decode(claimed["wrapped_key_material"])
    material = unwrap(caller, blob, claimed["wrapping_algorithm"])
    k = team.svc.keys.get(team.root(), key)
    nonce_ct = team.svc.lookup.handle(k, 1).encrypt(b"x", b"")
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    assert AESGCM(material).decrypt(nonce_ct[:12], nonce_ct[12:], b"") == b"x"
