"""Restores leave an audit trail on a real server (issue 7 §2; the audit design: a record
before acting and one after): ``backup.restore`` request and outcome records for a
restore, a refused restore and a forced one (with its approval id), and, for each restore
that committed, a ``backup.restored`` record with the counts, the archive's backup id and
SHA-256, who and how (service/backup_restore.py). No share or backup key in any record."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keykeeper.client import Client
from keykeeper.errors import ApprovalRequired, FailedPrecondition
from tests.support.principals import add_principal
from tests.support.server import ServerProcess

Record = dict[str, Any]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[[], ServerProcess]]:
    made: list[ServerProcess] = []

    def run() -> ServerProcess:
        data_dir = tmp_path / f"server-{len(made)}"
        data_dir.mkdir()
        server = ServerProcess(data_dir=data_dir,
                               database_url=f"sqlite:///{data_dir / 'keykeeper.db'}")
        made.append(server)
        server.start()
        server.init_and_unseal()
        return server

    yield run
    for server in made:
        server.stop()


def _records(server: ServerProcess, want: Callable[[list[Record]], bool]) -> list[Record]:
    """The server's audit file, read until ``want`` holds (notes are not waited for)."""
    deadline = time.monotonic() + 10
    while True:
        lines = (server.data_dir / "audit.log").read_bytes().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        if want(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def _restores(records: list[Record]) -> list[Record]:
    return [r for r in records if r["operation"] == "backup.restore"]


def _restored(records: list[Record]) -> list[Record]:
    return [r for r in records if r["operation"] == "backup.restored"]


def test_restore_refusal_and_forced_restore_are_audited(
        servers: Callable[[], ServerProcess], tmp_path: Path) -> None:
    source = servers()
    assert source.post("/v1/namespaces", {"name": "payments"}).status_code == 201
    source.create_key("orders")
    source.create_key("cards", namespace="payments")
    assert source.post("/v1/keys/orders/rotate").status_code == 200
    archive = tmp_path / "kk.backup"
    with Client(source.addr, source.root_token) as kk:
        made = kk.backup_create(archive, shares=3, threshold=2)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    secrets_seen = list(made.shares)

    # 1. into an empty instance
    target = servers()
    with Client(target.addr, target.root_token) as kk:
        kk.backup_restore(archive, shares=made.shares[:2], signer=made.signer)
    records = _records(target, lambda rs: len(_restored(rs)) == 1)
    phases = [(r["phase"], r["outcome"]) for r in _restores(records)]
    assert phases == [("request", "requested"), ("response", "success")]
    outcome = _restores(records)[-1]
    assert outcome["principal"] == "root" and outcome["interface"] == "rest"
    assert outcome["items"] == 2  # keys restored
    (note,) = _restored(records)
    detail = note["detail"]
    for part in (made.backup_id, f"archive sha256 {digest}", "2 keys", "3 versions",
                 "2 namespaces", "restored by root over rest",
                 f"request {outcome['request_id']}"):
        assert part in detail, (part, detail)
    assert note.get("reason") is None

    # 2. refused: the instance is no longer empty (the source's root token came along)
    c1, c2, c3 = (add_principal(target.database_url, f"{n}-{secrets.token_hex(3)}",
                                ("key-custodian",)) for n in ("c1", "c2", "c3"))
    with Client(target.addr, c1) as kk, pytest.raises(FailedPrecondition, match="not empty"):
        kk.backup_restore(archive, shares=made.shares[1:], signer=made.signer)
    records = _records(target, lambda rs: len(_restores(rs)) >= 4)
    refused = _restores(records)[2:]
    assert [(r["phase"], r["outcome"], r.get("error_code")) for r in refused] == [
        ("request", "requested", None), ("response", "error", "failed_precondition")]
    assert refused[1].get("items") is None
    assert len(_restored(records)) == 1  # nothing restored, nothing counted

    # 3. forced, under dual control: filed (202), approved by two others, then run
    with Client(target.addr, c1) as kk, pytest.raises(ApprovalRequired) as filed:
        kk.backup_restore(archive, shares=made.shares[1:], signer=made.signer,
                            force=True)
    approval_id = filed.value.approval_id
    assert approval_id
    for token in (c2, c3):
        r = target.post(f"/v1/approvals/{approval_id}/approve", {}, token=token)
        assert r.status_code == 200, r.text
    with Client(target.addr, c1) as kk:
        result = kk.backup_restore(archive, shares=made.shares[1:], signer=made.signer,
                                   force=True, approval_id=approval_id)
    assert result.forced
    records = _records(target, lambda rs: len(_restored(rs)) == 2)
    forced = [r for r in _restores(records) if r["phase"] == "response"][-1]
    assert forced["outcome"] == "success" and forced["approval_id"] == approval_id
    assert forced["items"] == 0  # both keys were there: a forced restore adds only
    gated = [r for r in _restores(records) if r["outcome"] == "pending"]
    assert gated and gated[0]["approval_id"] == approval_id
    note = _restored(records)[-1]
    assert note["reason"] == "forced"
    assert f"approval {approval_id}" in note["detail"]
    assert digest in note["detail"] and "2 keys" in note["detail"]

    # no share (nor the archive's backup key) in any record
    text = (target.data_dir / "audit.log").read_text()
    for share in secrets_seen:
        assert share not in text and share.split(".")[-1] not in text
