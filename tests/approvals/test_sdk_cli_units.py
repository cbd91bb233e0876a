"""The SDK and CLI of dual control and namespaces against a scripted server: paths,
bodies, the 202 mapping, output and exit statuses."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from keykeeper.client import ApprovalRule, Client
from keykeeper.errors import ApprovalRequired
from tests.support.scripted import Server

APPROVAL: dict[str, Any] = {
    "id": "ap-1", "operation": "namespace.delete", "requester": "so", "summary": "delete",
    "arguments": {"namespace": "team"}, "namespace": "team", "key_id": None,
    "state": "pending", "required": 2, "approvals": 1, "approver_roles": ["key-custodian"],
    "votes": [{"principal": "c1", "decision": "approve", "comment": "ok",
               "at": "2026-01-01T00:00:00Z"}],
    "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
    "decided_at": None, "result": None, "error": None,
}
NAMESPACE: dict[str, Any] = {"name": "team", "description": "", "allow_legacy_rsa_2048": False,
                             "rate_limit": 5.0, "created_by": "so",
                             "created_at": "2026-01-01T00:00:00Z", "keys": 3}


def _pending(server: Server) -> None:
    server.answers.append(httpx.Response(202, json={
        "type": "https://keykeeper.dev/errors/approval_required", "title": "Approval required",
        "status": 202, "detail": "'namespace.delete' needs 2 approval(s)", "code":
        "approval_required", "request_id": "r1", "approval_id": "ap-9"},
        headers={"content-type": "application/problem+json"}))


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def client(server: Server) -> Client:
    return Client("http://kk.test:8200", "tok", transport=httpx.MockTransport(server.handler))


def run(server: Server, *args: str, stdin: str | None = None) -> Any:
    state = State(transport=httpx.MockTransport(server.handler))
    return CliRunner().invoke(app, list(args), input=stdin, obj=state,
                              env={"KEYKEEPER_ADDR": "http://kk.test:8200",
                                   "KEYKEEPER_TOKEN": "tok"})


def test_sdk_paths_and_bodies(client: Client, server: Server) -> None:
    server.reply(APPROVAL)
    assert client.approve("ap-1", "ok").approvals == 1
    assert (server.last.method, server.last.url.path) == ("POST", "/v1/approvals/ap-1/approve")
    assert server.last_json() == {"comment": "ok"}
    server.reply({**APPROVAL, "state": "rejected"})
    assert client.reject("ap-1").state == "rejected"
    assert server.last_json() == {}
    server.reply({"approvals": [APPROVAL], "next_page_token": "t"})
    server.reply({"approvals": [APPROVAL]})
    assert [a.id for a in client.iter_approvals(state="pending")] == ["ap-1", "ap-1"]
    assert server.last.url.params["page_token"] == "t"
    assert server.last.url.params["state"] == "pending"
    server.reply({"rules": [{"operations": ["namespace.delete"], "required": 3,
                             "approver_roles": ["key-custodian"], "expiry_seconds": 600}]})
    policy = client.set_approval_policy([ApprovalRule(operations=["namespace.delete"],
                                                      required=3, expiry_seconds=600)])
    assert policy.rules[0].required == 3 and server.last.method == "PUT"
    assert server.last_json()["rules"][0]["approver_roles"] == ["key-custodian"]

    server.reply(NAMESPACE)
    client.update_namespace("team", rate_limit=None)
    assert server.last_json() == {"rate_limit": None}
    server.reply(NAMESPACE)
    client.update_namespace("team", description="d")
    assert server.last_json() == {"description": "d"}
    server.reply(NAMESPACE)
    client.get_namespace("a/b")
    assert server.last.url.raw_path == b"/v1/namespaces/a%2Fb"


def test_sdk_approval_required_carries_the_id(client: Client, server: Server) -> None:
    _pending(server)
    with pytest.raises(ApprovalRequired) as info:
        client.delete_namespace("team")
    assert info.value.approval_id == "ap-9"
    assert server.last.method == "DELETE"


def test_cli_pending_exit_status(server: Server) -> None:
    _pending(server)
    res = run(server, "namespace", "delete", "team", "--yes")
    assert res.exit_code == 4
    assert res.stderr.strip() == ("approval required: 'namespace.delete' needs 2 approval(s); "
                                  "approvers run: keykeeper approval approve ap-9")
    _pending(server)
    res = run(server, "--format", "json", "namespace", "delete", "team", "--yes")
    assert res.exit_code == 4 and json.loads(res.stdout)["approval_id"] == "ap-9"


def test_cli_tables(server: Server) -> None:
    server.reply({"approvals": [APPROVAL]})
    res = run(server, "approval", "list")
    assert res.exit_code == 0, res.stderr
    header, row = res.stdout.splitlines()
    assert header.split()[:5] == ["ID", "OPERATION", "REQUESTER", "STATE", "APPROVALS"]
    assert "ap-1" in row and "1/2" in row
    server.reply(APPROVAL)
    res = run(server, "approval", "show", "ap-1")
    assert "1 of 2" in res.stdout and "vote c1" in res.stdout and "(ok)" in res.stdout
    server.reply(NAMESPACE)
    res = run(server, "namespace", "show", "team")
    assert "5/s" in res.stdout and "keys" in res.stdout


def test_cli_failed_execution_exits_1(server: Server) -> None:
    server.reply({**APPROVAL, "state": "failed", "approvals": 2,
                  "error": {"code": "permission_denied", "detail": "'so' lacks it"}})
    res = run(server, "approval", "approve", "ap-1")
    assert res.exit_code == 1
    assert "state" in res.stdout and "failed" in res.stdout
    assert res.stderr.strip() == ("error: permission_denied: the approved operation failed: "
                                  "'so' lacks it")


def test_cli_usage_errors(server: Server) -> None:
    res = run(server, "namespace", "delete", "team")  # stdin is not a terminal
    assert res.exit_code == 2 and "--yes" in res.stderr
    res = run(server, "namespace", "update", "team")
    assert res.exit_code == 2
    res = run(server, "namespace", "update", "team", "--rate-limit", "3", "--no-rate-limit")
    assert res.exit_code == 2
    res = run(server, "policy", "approval", "set", "-", stdin="{not json")
    assert res.exit_code == 2
    assert server.requests == []
    server.reply(NAMESPACE)
    res = run(server, "namespace", "update", "team", "--no-rate-limit")
    assert res.exit_code == 0 and json.loads(server.last.content) == {"rate_limit": None}


CLAIMED: dict[str, Any] = {"token": "kk.claimed-secret", "accessor": "acc-" + "2" * 32,
                           "principal": "carol", "display_name": "", "ttl": 3600,
                           "expires_at": "2026-01-01T01:00:00Z"}


def test_sdk_claim(client: Client, server: Server) -> None:
    server.reply(CLAIMED)
    made = client.claim_approval("ap-1")
    assert (server.last.method, server.last.url.path) == ("POST", "/v1/approvals/ap-1/claim")
    assert server.last_json() == {}
    assert made.token == "kk.claimed-secret" and made.principal == "carol"
    assert "kk.claimed-secret" not in repr(made)


def test_cli_claim_prints_the_token_once(server: Server) -> None:
    server.reply(CLAIMED)
    res = run(server, "approval", "claim", "ap-1")
    assert res.exit_code == 0, res.stderr
    assert server.last.url.path == "/v1/approvals/ap-1/claim"
    assert "kk.claimed-secret" in res.stdout and "carol" in res.stdout
    assert "shown only now" in res.stderr
    server.reply(CLAIMED)
    res = run(server, "--format", "json", "approval", "claim", "ap-1")
    assert json.loads(res.stdout)["token"] == "kk.claimed-secret"
    server.problem("failed_precondition", 409, "already claimed")
    res = run(server, "approval", "claim", "ap-1")
    assert res.exit_code == 1 and "already claimed" in res.stderr


def test_cli_show_tells_the_requester_to_claim(server: Server) -> None:
    server.reply({**APPROVAL, "operation": "token.create", "state": "executed",
                  "result": {"token": "[withheld]", "claim": "available",
                             "accessor": CLAIMED["accessor"]}})
    res = run(server, "approval", "show", "ap-1")
    assert res.exit_code == 0, res.stderr
    assert "keykeeper approval claim ap-1" in res.stdout


def test_cli_token_for_another_says_how_to_claim(server: Server) -> None:
    _pending(server)
    res = run(server, "token", "create", "carol")
    assert res.exit_code == 4
    (line,) = res.stderr.strip().splitlines()
    assert "keykeeper approval claim ap-9" in line and "approval approve ap-9" in line
