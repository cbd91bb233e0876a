"""Adversarial regression tests for Secret Data and Opaque Objects (kmip/stored_data.py):
each reproduces a finding of the stored-data review (all fixed; a regression fails).

In-process: the KMIP handlers over a real node (SQLite and PostgreSQL,
tests/kmip/objects_support.py). Live: the real KMIP listener and REST API
(tests/kmip/conftest.py)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from keykeeper.errors import KeykeeperError
from keykeeper.kmip.ttlv.enums import ObjectType, Operation, SecretDataType
from keykeeper.kmip.ttlv.tags import Tag
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import (
    A,
    Kmip,
    alg,
    enum,
    kmip_fixture,  # noqa: F401  (the fixture)
    length,
    live_call,
    reason_of,
    template,
    text,
    uid_of,
)
from tests.kmip.test_ops_stored_data import _locate, _register, _secret


def _import_raw(rest, key_id: str, data: bytes):  # type: ignore[no-untyped-def]
    """REST import-parameters + import of ``data`` (format raw) into ``key_id``: the
    import answer, or the import-parameters one when that was refused."""
    params = rest.post(f"/v1/keys/{key_id}/import-parameters",
                       json={"wrapping_algorithm": "RSA_OAEP_SHA256"})
    if params.status_code != 200:
        return params
    public = serialization.load_pem_public_key(params.json()["public_key"].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    wrapped = public.encrypt(data, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                algorithm=hashes.SHA256(), label=None))
    return rest.post(f"/v1/keys/{key_id}/import", json={
        "import_token": params.json()["import_token"], "format": "raw",
        "wrapped_key_material": base64.b64encode(wrapped).decode()})


def _live_secret(live, data: bytes) -> str:  # type: ignore[no-untyped-def]
    """A Secret Data registered over KMIP 2.1 on the live server: its key id."""
    registered = live_call(live, Operation.REGISTER,
                           enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA),
                           template((2, 1)), _secret(data))
    assert registered.ok, registered.message
    return uid_of(registered.payload).split("/")[0]


# Finding 1 (fixed): a REST import adds a second version to a KMIP-registered Secret Data
# (docs: single version, never rotated; a new value is a new Register)
def test_live_rest_import_into_registered_secret_is_refused(live) -> None:  # type: ignore[no-untyped-def]
    key_id = _live_secret(live, b"breaker-original-secret")
    imported = _import_raw(live.rest, key_id, b"breaker-replacement-secret")
    assert imported.status_code in (400, 409), imported.text
    shown = live.rest.get(f"/v1/keys/{key_id}")
    assert shown.json()["primary_version"] == 1, shown.text
    second = live_call(live, Operation.GET, text(Tag.UNIQUE_IDENTIFIER, f"{key_id}/2"))
    assert not second.ok


# Finding 2 (fixed): key attributes (Cryptographic Algorithm AES, a Cryptographic Length
# contradicting the data) are kept on a Secret Data, so a Locate for AES keys returns it
def test_secret_data_is_not_located_as_an_aes_key(kmip: Kmip) -> None:
    aes = kmip.create_aes(256)
    with pytest.raises(KeykeeperError) as refused:  # the Register is refused
        _register(kmip, ObjectType.SECRET_DATA, _secret(b"k" * 32),
                  Cryptographic_Algorithm=alg(A.AES), Cryptographic_Length=length(7))
    assert reason_of(refused.value) == "Invalid_Field"
    found = _locate(kmip, Cryptographic_Algorithm=alg(A.AES))
    assert found == [aes]  # nothing else became an AES key


# Finding 3 (fixed): a KMIP 2.x Locate drops a filter it does not know (Secret Data Type)
# and answers every object, AES keys included; 1.4 answers Invalid_Field
def test_locate_by_secret_data_type_is_not_ignored(node: Node) -> None:  # noqa: F811
    kmip = Kmip(node, (2, 1))
    aes = kmip.create_aes(256)
    _register(kmip, ObjectType.SECRET_DATA, _secret(b"pw-bytes"))
    with pytest.raises(KeykeeperError) as refused:  # as 1.4 does: never every object
        _locate(kmip, Secret_Data_Type=enum(Tag.SECRET_DATA_TYPE, SecretDataType.SEED))
    assert reason_of(refused.value) == "Invalid_Field"
    assert _locate(kmip, Cryptographic_Algorithm=alg(A.AES)) == [aes]


# Finding 4 (fixed): a Secret Data Type outside the enumeration (99) is stored and served
# back
def test_undefined_secret_data_type_is_refused(kmip: Kmip) -> None:
    with pytest.raises(KeykeeperError) as refused:
        _register(kmip, ObjectType.SECRET_DATA, _secret(b"x", kind=99))
    assert reason_of(refused.value) == "Invalid_Field"


# Finding 5 (fixed): PATCH sets a rotation_period on a stored-data key (a create of an
# external key refuses one)
def test_live_rotation_period_refused_on_stored_data(live) -> None:  # type: ignore[no-untyped-def]
    key_id = _live_secret(live, b"breaker-rotation")
    patched = live.rest.patch(f"/v1/keys/{key_id}", json={"rotation_period": "1d"})
    assert patched.status_code == 400, patched.text
