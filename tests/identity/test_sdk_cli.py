"""The SDK methods and CLI commands of access control against a scripted server: the
requests they send, how answers are shown, and dual control's one line and exit 4."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keykeeper.client import Client, NewToken
from keykeeper.errors import ApprovalRequired, FailedPrecondition
from tests.cli.conftest import Cli
from tests.support.scripted import Server

T = "2026-01-01T00:00:00Z"
PRINCIPAL: dict[str, Any] = {
    "name": "alice", "kind": "person", "roles": ["security-officer"], "metadata": {},
    "certificate_subjects": [], "rate_limit": None, "disabled": False, "created_by": "root",
    "created_at": T, "updated_at": T}
TOKEN: dict[str, Any] = {
    "accessor": "acc-" + "1" * 32, "principal": "alice", "display_name": "laptop",
    "created_by": "root", "created_at": T, "expires_at": "2026-01-31T00:00:00Z",
    "revoked_at": None, "ttl": 2592000, "state": "active"}
ROLE: dict[str, Any] = {"name": "payments", "description": "", "operations": ["encrypt"],
                        "builtin": False, "created_at": T, "updated_at": T}
GRANT: dict[str, Any] = {
    "id": "g-" + "a" * 32, "grantee": "role:application", "operations": ["encrypt", "decrypt"],
    "namespace": "payments", "key_pattern": "card-*", "labels": {"env": "prod"},
    "condition": "context.tenant == principal.metadata.tenant", "created_by": "alice",
    "created_at": T}


def approval_problem(server: Server, approval_id: str = "ap-123") -> None:
    body = {"type": "https://keykeeper.dev/errors/approval_required",
            "title": "Approval required", "status": 202, "code": "approval_required",
            "detail": f"approval request {approval_id} is pending",
            "approval_id": approval_id}
    server.answers.append(httpx.Response(202, content=json.dumps(body).encode(),
                                         headers={"content-type": "application/problem+json"}))


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def kk(server: Server) -> Iterator[Client]:
    with Client("http://kk.test", "tok", transport=httpx.MockTransport(server.handler)) as c:
        yield c


@pytest.fixture
def cli() -> Cli:
    return Cli()


# -- SDK ---------------------------------------------------------------------------------------
def test_sdk_requests(server: Server, kk: Client) -> None:
    server.reply(PRINCIPAL, 201)
    p = kk.create_principal("alice", kind="person", roles=["security-officer"],
                            metadata={"team": "sec"})
    assert p.name == "alice" and p.created_at is not None
    assert (server.last.method, server.last.url.path) == ("POST", "/v1/principals")
    assert server.last_json() == {"name": "alice", "kind": "person",
                                  "roles": ["security-officer"], "metadata": {"team": "sec"}}
    server.reply(PRINCIPAL)
    kk.update_principal("alice", rate_limit=None)
    assert (server.last.method, server.last_json()) == ("PATCH", {"rate_limit": None})
    server.reply(PRINCIPAL)
    kk.update_principal("alice", roles=[])
    assert server.last_json() == {"roles": []}
    server.reply(PRINCIPAL)
    kk.disable_principal("a/b")
    assert server.last.url.raw_path == b"/v1/principals/a%2Fb"
    server.reply({"principals": [PRINCIPAL]})
    assert [x.name for x in kk.list_principals(role="auditor")] == ["alice"]
    assert server.last.url.params["role"] == "auditor"
    server.reply({"token": "kk.secret", "accessor": TOKEN["accessor"], "principal": "alice",
                  "display_name": "", "expires_at": T, "ttl": 3600}, 201)
    made = kk.create_token("alice", ttl=3600)
    assert isinstance(made, NewToken) and "kk.secret" not in repr(made)
    server.reply({"tokens": [TOKEN]})
    assert kk.list_tokens("alice")[0].state == "active"
    server.reply(TOKEN)
    kk.renew_token(TOKEN["accessor"])
    assert server.last.url.path == f"/v1/tokens/{TOKEN['accessor']}/renew"
    server.reply({"revoked": 2})
    assert kk.revoke_root_tokens() == 2
    server.reply({"conflicts": [["a", "b"]]})
    assert kk.set_sod_policy([("a", "b")]) == [("a", "b")]
    assert (server.last.method, server.last_json()) == ("PUT", {"conflicts": [["a", "b"]]})
    server.reply(GRANT, 201)
    g = kk.create_grant("role:application", ["encrypt", "decrypt"], namespace="payments",
                        key_pattern="card-*", labels={"env": "prod"},
                        condition=GRANT["condition"])
    assert g.id == GRANT["id"] and server.last_json()["grantee"] == "role:application"


def test_sdk_errors_carry_the_approval_id(server: Server, kk: Client) -> None:
    approval_problem(server, "ap-77")
    with pytest.raises(ApprovalRequired) as err:
        kk.create_role("payments", ["encrypt"])
    assert err.value.approval_id == "ap-77"
    server.problem("failed_precondition", 409, "no security officer")
    with pytest.raises(FailedPrecondition, match="no security officer"):
        kk.revoke_root_tokens()


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_principal_commands(cli: Cli) -> None:
    cli.reply(PRINCIPAL, 201)
    r = cli.run(["principal", "create", "alice", "--kind", "person", "--role",
                 "security-officer", "--metadata", "team=sec", "--cert-subject", "DNS:a.example"])
    assert r.exit_code == 0, r.output
    assert cli.last_json() == {"name": "alice", "kind": "person", "roles": ["security-officer"],
                               "metadata": {"team": "sec"},
                               "certificate_subjects": ["DNS:a.example"]}
    assert "security-officer" in r.output
    cli.reply({"principals": [PRINCIPAL]})
    r = cli.run(["principal", "list"])
    assert r.exit_code == 0 and "NAME" in r.output and "alice" in r.output
    cli.reply(PRINCIPAL)
    r = cli.run(["principal", "update", "alice", "--clear-rate-limit", "--disable"])
    assert r.exit_code == 0, r.output
    assert cli.last_json() == {"rate_limit": None, "disabled": True}
    r = cli.run(["principal", "update", "alice"])
    assert r.exit_code == 2
    cli.reply({"name": "alice", "tokens_revoked": 2, "grants_deleted": 1})
    r = cli.run(["principal", "delete", "alice", "--yes"])
    assert r.exit_code == 0 and "2 token(s) revoked" in r.output
    r = cli.run(["principal", "delete", "alice"])
    assert r.exit_code == 2 and "--yes" in r.output


def test_cli_token_commands(cli: Cli) -> None:
    cli.reply({"token": "kk.secret", "accessor": TOKEN["accessor"], "principal": "alice",
               "display_name": "laptop", "expires_at": T, "ttl": 3600}, 201)
    r = cli.run(["token", "create", "alice", "--ttl", "3600", "--display-name", "laptop"])
    assert r.exit_code == 0, r.output
    assert cli.last_json() == {"principal": "alice", "ttl": 3600, "display_name": "laptop"}
    assert "kk.secret" in r.stdout and "shown only now" in r.output
    cli.reply({"tokens": [TOKEN]})
    r = cli.run(["--format", "json", "token", "list", "--principal", "alice"])
    assert json.loads(r.stdout)["tokens"][0]["accessor"] == TOKEN["accessor"]
    cli.reply({**TOKEN, "state": "revoked", "revoked_at": T})
    r = cli.run(["token", "revoke", TOKEN["accessor"]])
    assert r.exit_code == 0 and "revoked" in r.output
    cli.reply({"principal": "alice", "kind": "person", "roles": ["security-officer"],
               "metadata": {}, "accessor": TOKEN["accessor"], "display_name": "laptop",
               "created_at": T, "expires_at": T, "ttl": 3600})
    r = cli.run(["token", "whoami"])
    assert r.exit_code == 0 and "alice" in r.output and TOKEN["accessor"] in r.output
    cli.reply({"revoked": 1})
    r = cli.run(["token", "revoke-root", "--yes"])
    assert r.exit_code == 0 and "revoked 1 root token" in r.output
    cli.problem("failed_precondition", 409, "no enabled principal holds the security-officer")
    r = cli.run(["token", "revoke-root", "--yes"])
    assert r.exit_code == 1
    assert r.stderr.strip().splitlines() == [
        "error: failed_precondition: no enabled principal holds the security-officer"]


def test_cli_role_grant_and_sod(cli: Cli) -> None:
    cli.reply(ROLE, 201)
    r = cli.run(["role", "create", "payments", "--operations", "encrypt,decrypt",
                 "--operations", "key.get"])
    assert r.exit_code == 0, r.output
    assert cli.last_json()["operations"] == ["encrypt", "decrypt", "key.get"]
    cli.reply(GRANT, 201)
    r = cli.run(["grant", "create", "--role", "application", "--operations", "encrypt,decrypt",
                 "--namespace", "payments", "--key-pattern", "card-*", "--label", "env=prod",
                 "--condition", "context.tenant == principal.metadata.tenant"])
    assert r.exit_code == 0, r.output
    assert cli.last_json() == {k: GRANT[k] for k in ("grantee", "operations", "namespace",
                                                     "key_pattern", "labels", "condition")}
    r = cli.run(["grant", "create", "--role", "a", "--principal", "b", "--operations", "x"])
    assert r.exit_code == 2
    cli.reply({"grants": [GRANT]})
    r = cli.run(["grant", "list", "--principal", "bob"])
    assert cli.last.url.params["grantee"] == "principal:bob" and GRANT["id"] in r.output
    cli.reply({"conflicts": [["crypto-officer", "auditor"]]})
    r = cli.run(["policy", "sod", "show"])
    assert r.exit_code == 0 and "crypto-officer" in r.output
    cli.reply({"conflicts": [["a", "b"]]})
    r = cli.run(["policy", "sod", "set", "a:b"])
    assert r.exit_code == 0 and cli.last_json() == {"conflicts": [["a", "b"]]}
    assert cli.run(["policy", "sod", "set"]).exit_code == 2
    assert cli.run(["policy", "sod", "set", "nocolon"]).exit_code == 2


def test_cli_dual_control_is_one_line_and_exit_4(cli: Cli) -> None:
    approval_problem(cli, "ap-9")
    r = cli.run(["grant", "create", "--role", "application", "--operations", "encrypt"])
    assert r.exit_code == 4, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "approval required" in lines[0] and "ap-9" in lines[0]
    assert "Traceback" not in r.output
