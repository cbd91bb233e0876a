"""KeyRepository.as_inserted is the key get_by_id reads back after insert, and
change_labels leaves exactly the labels asked for; on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from keykeeper.crypto.registry import Purpose
from keykeeper.domain.keys import Key, new_key_id
from keykeeper.domain.states import KeyState
from keykeeper.store.engine import make_engine
from keykeeper.store.keys import KeyRepository, NewVersion
from keykeeper.store.migrate import upgrade
from keykeeper.store.system import NamespaceRow, SystemRepository

NOW = datetime(2026, 11, 29, 12, 30, 45, 123456, tzinfo=UTC)


def _key(**changes: object) -> Key:
    base = Key(id=new_key_id(), namespace="ns", name="k-" + new_key_id()[-8:],
               purpose=Purpose.ENCRYPT, algorithm="AES-256-GCM", state=KeyState.PRE_ACTIVE,
               primary_version=1, created_at=NOW, updated_at=NOW, created_by="alice")
    fields = {f: getattr(base, f) for f in base.__slots__}
    fields.update(changes)
    return Key(**fields)


KEYS = {
    "plain": (_key(), NewVersion(1, "active", b"\x01" * 60, None, NOW)),
    "labels and lifecycle": (
        _key(labels=MappingProxyType({"zeta": "1", "alpha": "2", "kmip.x": "y"}),
             description="d", exportable=True, rotation_period=86400,
             next_rotation_time=NOW + timedelta(days=1), activation_date=NOW,
             deactivation_date=NOW + timedelta(days=30), min_encryption_version=1,
             usage_limit=1 << 40, usage_rotate_fraction=0.75, originator_usage_period=60,
             recipient_usage_period=120),
        NewVersion(1, "active", b"\x02" * 60, None, NOW)),
    "public key only": (_key(purpose=Purpose.SIGN, algorithm="ECDSA-P256-SHA256",
                             origin="external"),
                        NewVersion(1, "active", None, "-----BEGIN PUBLIC KEY-----\n", NOW)),
    "hsm": (_key(protection="hsm"), NewVersion(1, "active", None, None, NOW,
                                               hsm_key_id="ab" * 8)),
    "no version": (_key(primary_version=0, origin="external"), None),
}


@pytest.fixture
def repo_conn(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        SystemRepository().insert_namespace(conn, NamespaceRow(
            name="ns", wrapped_kek=b"k", allow_legacy_rsa_2048=False, created_at=NOW))
    try:
        with engine.begin() as conn:
            yield KeyRepository(), conn
    finally:
        engine.dispose()


@pytest.mark.parametrize("case", list(KEYS))
def test_as_inserted_equals_the_key_read_back(repo_conn, case: str) -> None:  # type: ignore[no-untyped-def]
    repo, conn = repo_conn
    key, version = KEYS[case]
    repo.insert(conn, key, version)
    read = repo.get_by_id(conn, key.id)
    made = repo.as_inserted(key, version)
    assert made == read
    assert list(made.labels) == sorted(read.labels)


def test_change_labels_writes_only_the_difference(repo_conn) -> None:  # type: ignore[no-untyped-def]
    repo, conn = repo_conn
    key, version = KEYS["labels and lifecycle"]
    repo.insert(conn, key, version)
    new = {"zeta": "1", "alpha": "3", "kmip.z": "w"}
    repo.change_labels(conn, key.id, key.labels, new)
    read = repo.get_by_id(conn, key.id)
    assert read is not None and dict(read.labels) == new
    repo.change_labels(conn, key.id, new, new)  # nothing to do
    read = repo.get_by_id(conn, key.id)
    assert read is not None and dict(read.labels) == new
