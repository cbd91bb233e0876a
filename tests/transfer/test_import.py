"""Key import (issue 6 §3) through the service layer, on both backends: material wrapped
by the ``cryptography`` package as an outside client would, in every format."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from keykeeper.crypto.wrap import UNWRAP_FAILED
from keykeeper.domain.states import KeyState
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.key_args import CreateKey
from keykeeper.service.key_import import ImportParameters
from tests.approvals.conftest import Team

from .client_side import rsa_key, wrap

DER, PEM = serialization.Encoding.DER, serialization.Encoding.PEM
PKCS8, TRAD = serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL
NOENC = serialization.NoEncryption()


def external(team: Team, name: str, algorithm: str, **kw: object) -> str:
    key = team.svc.keys.create(team.root(), CreateKey(name=name, algorithm=algorithm,
                                                      origin="external", **kw))  # type: ignore[arg-type]
    assert key.state == KeyState.PRE_ACTIVE and key.primary_version == 0 and not key.versions
    return key.id


def params(team: Team, key: str, algorithm: str = "RSA_AES_KEY_WRAP_SHA256",
           **kw: object) -> ImportParameters:
    return team.svc.keys.import_parameters(team.root(), key, wrapping_algorithm=algorithm,
                                           **kw)  # type: ignore[arg-type]


def do_import(team: Team, key: str, material: bytes, fmt: str,
              algorithm: str = "RSA_AES_KEY_WRAP_SHA256"):  # type: ignore[no-untyped-def]
    p = params(team, key, algorithm)
    return team.svc.keys.import_material(team.root(), key, import_token=p.import_token,
                                         wrapped_key_material=wrap(p.public_key, material,
                                                                   algorithm), format=fmt)


@pytest.mark.parametrize("algorithm", ["RSA_OAEP_SHA256", "RSA_AES_KEY_WRAP_SHA256"])
def test_raw_aes_key_with_leading_zeros_imports_and_encrypts(team: Team, algorithm: str) -> None:
    key = external(team, "byok", "AES_256_GCM")
    material = b"\x00\x00" + os.urandom(30)
    imported = do_import(team, key, material, "raw", algorithm)
    assert imported.state == KeyState.ACTIVE and imported.primary_version == 1
    assert imported.origin == "external"
    ct = team.svc.crypto.encrypt(team.root(), key, b"hello")
    assert team.svc.crypto.decrypt(team.root(), key, ct.ciphertext)[0] == b"hello"
    # the stored material is the imported bytes exactly (the handle holds them)
    from keykeeper.crypto.wrap import exportable_material
    got, fmt = exportable_material(team.svc.lookup.handle(imported, 1))
    assert (got, fmt) == (material, "raw")


def _rsa_forms(key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    return {"pkcs8": key.private_bytes(DER, PKCS8, NOENC),
            "pkcs1": key.private_bytes(DER, TRAD, NOENC),
            "pkcs8-pem": key.private_bytes(PEM, PKCS8, NOENC),
            "pkcs1-pem": key.private_bytes(PEM, TRAD, NOENC)}


@pytest.mark.parametrize("form", ["pkcs8", "pkcs1", "pkcs8-pem", "pkcs1-pem"])
def test_rsa_import_every_format(team: Team, form: str) -> None:
    private = rsa_key(3072)
    key = external(team, "rsa", "RSA_PSS_3072_SHA256")
    do_import(team, key, _rsa_forms(private)[form], form.removesuffix("-pem"))
    sig, _ = team.svc.crypto.sign(team.root(), key, b"m", prehashed=False,
                                  signature_format=None)
    private.public_key().verify(sig, b"m", padding.PSS(
        mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())


@pytest.mark.parametrize("form", ["pkcs8", "sec1", "pkcs8-pem", "sec1-pem"])
def test_ec_import_every_format(team: Team, form: str) -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    data = private.private_bytes(PEM if form.endswith("-pem") else DER,
                                 PKCS8 if form.startswith("pkcs8") else TRAD, NOENC)
    key = external(team, "ec", "ECDSA_P384_SHA384")
    do_import(team, key, data, form.removesuffix("-pem"))
    sig, _ = team.svc.crypto.sign(team.root(), key, b"m", prehashed=False,
                                  signature_format=None)
    private.public_key().verify(sig, b"m", ec.ECDSA(hashes.SHA384()))


@pytest.mark.parametrize("form", ["raw", "pkcs8", "pkcs8-pem"])
def test_ed25519_import(team: Team, form: str) -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(b"\x00" * 3 + os.urandom(29))
    data = {"raw": private.private_bytes_raw(),
            "pkcs8": private.private_bytes(DER, PKCS8, NOENC),
            "pkcs8-pem": private.private_bytes(PEM, PKCS8, NOENC)}[form]
    key = external(team, "ed", "ED25519")
    do_import(team, key, data, form.removesuffix("-pem"))
    sig, _ = team.svc.crypto.sign(team.root(), key, b"m", prehashed=False,
                                  signature_format=None)
    private.public_key().verify(sig, b"m")


def test_hmac_import(team: Team) -> None:
    material = os.urandom(32)
    key = external(team, "mac", "HMAC_SHA256")
    do_import(team, key, material, "raw")
    import hmac as std
    tag, _ = team.svc.crypto.mac(team.root(), key, b"m")
    assert tag == std.new(material, b"m", "sha256").digest()


def _refused(team: Team, key: str, material: bytes, fmt: str, match: str) -> str:
    with pytest.raises(InvalidArgument, match=match) as info:
        do_import(team, key, material, fmt)
    return info.value.detail


def test_refusals_name_the_problem_and_never_echo_material(team: Team) -> None:
    aes = external(team, "aes", "AES_256_GCM")
    detail = _refused(team, aes, b"\x11" * 16, "raw", "must be 32 bytes")
    assert "11" * 4 not in detail
    _refused(team, aes, b"\x11" * 32, "pkcs8", "format 'pkcs8' is not accepted for AES_256_GCM")
    ec_key = external(team, "ec", "ECDSA_P256_SHA256")
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(DER, PKCS8, NOENC)
    _refused(team, ec_key, p384, "pkcs8", "curve is secp384r1, not secp256r1")
    rsa_der = rsa_key(3072).private_bytes(DER, PKCS8, NOENC)
    _refused(team, ec_key, rsa_der, "pkcs8", "not an EC private key")
    weak = rsa.generate_private_key(65537, 2048).private_bytes(DER, PKCS8, NOENC)
    rsa_id = external(team, "rsa", "RSA_OAEP_3072_SHA256")
    _refused(team, rsa_id, weak, "pkcs8", "modulus is 2048 bits, not 3072")
    # a PKCS#8 body under the PKCS#1 label: both named
    pem = rsa_key(3072).private_bytes(PEM, PKCS8, NOENC).replace(
        b"PRIVATE KEY", b"RSA PRIVATE KEY")
    _refused(team, rsa_id, pem, "pkcs1", "PEM label 'RSA PRIVATE KEY' does not match its "
             "contents, a PKCS#8 PrivateKeyInfo")
    _refused(team, rsa_id, rsa_key(3072).private_bytes(DER, TRAD, NOENC), "pkcs8",
             "format 'pkcs8' does not match the key material, a PKCS#1 RSAPrivateKey")


def test_tokens_expire_are_single_use_and_bound_to_their_key(team: Team) -> None:
    a = external(team, "a", "AES_256_GCM")
    b = external(team, "b", "AES_256_GCM")
    material = os.urandom(32)
    p = params(team, a)
    blob = wrap(p.public_key, material, p.wrapping_algorithm)
    with pytest.raises(InvalidArgument, match="issued for another key"):
        team.svc.keys.import_material(team.root(), b, import_token=p.import_token,
                                      wrapped_key_material=blob, format="raw")
    with pytest.raises(InvalidArgument, match="import_token is not valid"):
        team.svc.keys.import_material(team.root(), a, import_token=p.import_token + "x",
                                      wrapped_key_material=blob, format="raw")
    team.svc.keys.import_material(team.root(), a, import_token=p.import_token,
                                  wrapped_key_material=blob, format="raw")
    with pytest.raises(InvalidArgument, match="already been used"):
        team.svc.keys.import_material(team.root(), a, import_token=p.import_token,
                                      wrapped_key_material=blob, format="raw")
    p2 = params(team, b, expires_in=60)
    team.node.clock.advance(seconds=61)
    with pytest.raises(InvalidArgument, match="expired"):
        team.svc.keys.import_material(team.root(), b, import_token=p2.import_token,
                                      wrapped_key_material=wrap(p2.public_key, material,
                                                                p2.wrapping_algorithm),
                                      format="raw")
    with pytest.raises(InvalidArgument, match="expires_in must be between"):
        params(team, b, expires_in=8 * 86400)


@pytest.mark.parametrize("algorithm", ["RSA_OAEP_SHA256", "RSA_AES_KEY_WRAP_SHA256"])
def test_tampered_or_misdirected_material_is_one_uniform_error(team: Team,
                                                               algorithm: str) -> None:
    key = external(team, "k", "AES_256_GCM")
    details = set()
    for mutate in (lambda b: b[:-1] + bytes([b[-1] ^ 1]), lambda b: bytes([b[0] ^ 1]) + b[1:],
                   lambda b: b[:100]):
        p = params(team, key, algorithm)
        blob = mutate(wrap(p.public_key, os.urandom(32), algorithm))
        with pytest.raises(InvalidArgument) as info:
            team.svc.keys.import_material(team.root(), key, import_token=p.import_token,
                                          wrapped_key_material=blob, format="raw")
        details.add(info.value.detail)
    # wrapped under someone else's key
    p = params(team, key, algorithm)
    other = rsa_key(4096).public_key().public_bytes(
        PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(InvalidArgument) as info:
        team.svc.keys.import_material(team.root(), key, import_token=p.import_token,
                                      wrapped_key_material=wrap(other, os.urandom(32),
                                                                algorithm), format="raw")
    details.add(info.value.detail)
    assert details == {UNWRAP_FAILED}
    assert team.svc.keys.get(team.root(), key).primary_version == 0


def test_public_key_only_import_verifies_and_refuses_to_sign(team: Team) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = external(team, "pub", "ECDSA_P256_SHA256")
    for fmt_encoding in (DER, PEM):
        spki = private.public_key().public_bytes(
            fmt_encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
        imported = do_import(team, key, spki, "spki")
    assert imported.primary_version == 2 and imported.version(2).public_only  # type: ignore[union-attr]
    sig = private.sign(b"m", ec.ECDSA(hashes.SHA256()))
    assert team.svc.crypto.verify(team.root(), key, b"m", sig, prehashed=False,
                                  signature_format=None)[0]
    with pytest.raises(FailedPrecondition, match="public key only"):
        team.svc.crypto.sign(team.root(), key, b"m", prehashed=False, signature_format=None)


def test_external_key_paths_without_a_version(team: Team) -> None:
    key = external(team, "empty", "AES_256_GCM")
    root = team.root()
    with pytest.raises(FailedPrecondition, match="no key material yet"):
        team.svc.crypto.encrypt(root, key, b"x")
    with pytest.raises(FailedPrecondition, match="import new material instead"):
        team.svc.keys.rotate(root, key)
    with pytest.raises(FailedPrecondition, match="no key material yet"):
        team.svc.keys.activate(root, key)
    keys, _ = team.svc.keys.list_keys(root, __import__("keykeeper.store.keys", fromlist=[
        "KeyFilter"]).KeyFilter(), None, None)
    assert any(k.id == key and k.primary_version == 0 for k in keys)
    with pytest.raises(FailedPrecondition, match="only external keys"):
        params(team, team.svc.keys.create(root, CreateKey(name="gen")).id)
    with pytest.raises(InvalidArgument, match="not rotated automatically"):
        CreateKey(name="x", origin="external", rotation_period="30d")
    with pytest.raises(InvalidArgument, match="never exportable"):
        CreateKey(name="x", exportable=True, protection="hsm")
    with pytest.raises(InvalidArgument, match="origin must be"):
        CreateKey(name="x", origin="elsewhere")


def test_future_activation_date_keeps_key_pre_active_after_import(team: Team) -> None:
    when = team.node.clock() + timedelta(days=2)
    key = external(team, "later", "AES_256_GCM", activation_date=when)
    imported = do_import(team, key, os.urandom(32), "raw")
    assert imported.state == KeyState.PRE_ACTIVE and imported.primary_version == 1
    # the scheduler's activation job activates it when the date comes
    team.node.clock.advance(days=3)
    team.svc.crypto.encrypt(team.root(), key, b"x")  # effective state: active
