"""The operator guide's bootstrap, with the CLI against a real server of its own (it
retires the root token): root appoints a security officer and two key custodians, revokes
itself, and from then on role assignment, and a token for another principal, wait for two
custodians' approval; the officer then claims that token, once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keykeeper.store.engine import make_engine
from keykeeper.store.schema import metadata
from tests.conftest import PgSchema
from tests.support.server import ServerProcess


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    schema = PgSchema() if backend == "postgresql" else None
    url = schema.url if schema else f"sqlite:///{tmp_path / 'keykeeper.db'}"
    s = ServerProcess(data_dir=tmp_path, database_url=url, backend=backend)
    try:
        s.start()
        s.init_and_unseal()
        yield s
    finally:
        s.stop()
        if schema:
            schema.drop()


def kk(server: ServerProcess, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "keykeeper", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def new_token(server: ServerProcess, principal: str) -> str:
    out = ok(kk(server, server.root_token, "--format", "json", "token", "create", principal,
                "--display-name", "bootstrap"))
    return str(json.loads(out)["token"])


def dump_store(server: ServerProcess) -> str:
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as conn:
            return "\n".join(repr(v) for table in metadata.sorted_tables
                             for row in conn.execute(table.select()) for v in row)
    finally:
        engine.dispose()


def test_bootstrap_and_revoke_root(server: ServerProcess) -> None:
    root = server.root_token
    r = kk(server, root, "token", "revoke-root", "--yes")
    assert r.returncode == 1 and "security-officer" in r.stderr
    ok(kk(server, root, "principal", "create", "alice", "--kind", "person",
          "--role", "security-officer"))
    ok(kk(server, root, "principal", "create", "carol", "--kind", "person",
          "--role", "key-custodian"))
    alice, carol = (new_token(server, n) for n in ("alice", "carol"))
    r = kk(server, alice, "token", "revoke-root", "--yes")  # one custodian is not enough
    assert r.returncode == 1 and "'key-custodian'" in r.stderr and "1 more" in r.stderr
    ok(kk(server, root, "principal", "create", "dave", "--kind", "person",
          "--role", "key-custodian"))
    dave = new_token(server, "dave")
    assert "security-officer" in ok(kk(server, alice, "token", "whoami"))
    assert "revoked 1 root token" in ok(kk(server, alice, "token", "revoke-root", "--yes"))
    r = kk(server, root, "principal", "list")
    assert r.returncode == 1 and "unauthenticated" in r.stderr

    # Role assignment now waits for two custodians (exit 4, one line naming the request).
    r = kk(server, alice, "--format", "json", "principal", "create", "payments-app",
           "--role", "application", "--metadata", "tenant=t1")
    assert r.returncode == 4, r.stderr
    approval_id = json.loads(r.stdout)["approval_id"]
    assert len(r.stderr.strip().splitlines()) == 1 and approval_id in r.stderr
    ok(kk(server, carol, "approval", "approve", approval_id))
    ok(kk(server, dave, "approval", "approve", approval_id))
    shown = json.loads(ok(kk(server, alice, "--format", "json", "principal", "show",
                             "payments-app")))
    assert shown["roles"] == ["application"] and shown["created_by"] == "alice"
    # Separation of duties holds for the officer too: no self-grants.
    r = kk(server, alice, "grant", "create", "--principal", "alice", "--operations", "encrypt")
    assert r.returncode == 1 and "permission_denied" in r.stderr
    listed = json.loads(ok(kk(server, alice, "--format", "json", "token", "list",
                              "--principal", "root")))["tokens"]
    assert listed and all(t["state"] == "revoked" for t in listed)

    # A token for another principal waits for the custodians; the officer claims it once.
    r = kk(server, alice, "--format", "json", "token", "create", "payments-app", "--ttl", "1h")
    assert r.returncode == 4, r.stderr
    approval_id = json.loads(r.stdout)["approval_id"]
    assert f"keykeeper approval claim {approval_id}" in r.stderr
    shown = ok(kk(server, carol, "approval", "show", approval_id))
    assert "payments-app" in shown and "application" in shown  # whom, and which roles
    votes = [ok(kk(server, carol, "--format", "json", "approval", "approve", approval_id)),
             ok(kk(server, dave, "--format", "json", "approval", "approve", approval_id))]
    assert json.loads(votes[1])["state"] == "executed"
    votes.append(ok(kk(server, alice, "approval", "show", approval_id)))
    votes.append(ok(kk(server, carol, "--format", "json", "approval", "list")))
    before_claim = dump_store(server)
    r = kk(server, carol, "approval", "claim", approval_id)
    assert r.returncode == 1 and "permission_denied" in r.stderr
    claimed = json.loads(ok(kk(server, alice, "--format", "json", "approval", "claim",
                               approval_id)))
    token = claimed["token"]
    assert token.startswith("kk.") and claimed["principal"] == "payments-app"
    assert all(token not in out for out in votes) and token not in before_claim
    r = kk(server, alice, "approval", "claim", approval_id)
    assert r.returncode == 1 and "failed_precondition" in r.stderr
    assert "payments-app" in ok(kk(server, token, "token", "whoami"))
    assert token not in dump_store(server)
