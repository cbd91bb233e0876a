"""Dual control and namespaces against real servers (subprocesses), on SQLite and
PostgreSQL: the REST flow, the SDK and the CLI, and approvals racing on two nodes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from keykeeper.client import Client
from keykeeper.errors import AlreadyExists, ApprovalRequired, NotFound, PermissionDenied
from keykeeper.store.engine import make_engine
from keykeeper.store.schema import approval_votes, approvals, key_events, keys
from tests.support.principals import add_principal
from tests.support.server import ServerProcess, b64


def _people(server: ServerProcess, custodians: int = 3) -> dict[str, str]:
    """Tokens of a fresh security officer 'so' and custodians 'c1'..'cN'."""
    tag = secrets.token_hex(3)
    tokens = {"so": add_principal(server.database_url, f"so-{tag}", ("security-officer",))}
    for n in range(1, custodians + 1):
        tokens[f"c{n}"] = add_principal(server.database_url, f"c{n}-{tag}", ("key-custodian",))
    return tokens


def _namespace_with_key(server: ServerProcess, token: str) -> tuple[str, str, str]:
    ns = "ns-" + secrets.token_hex(4)
    r = server.post("/v1/namespaces", {"name": ns, "description": "live"}, token=token)
    assert r.status_code == 201, r.text
    key = server.create_key("k", namespace=ns)
    ct = server.post(f"/v1/keys/{key['id']}/encrypt", {"plaintext": b64(b"x")}).json()
    return ns, key["id"], ct["ciphertext"]


def _requested(server: ServerProcess, ns: str, token: str) -> str:
    r = server.request("DELETE", f"/v1/namespaces/{ns}", token=token)
    assert r.status_code == 202, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "approval_required" and problem["status"] == 202
    assert "key-custodian" in problem["detail"]
    return str(problem["approval_id"])


def _one_execution(server: ServerProcess, approval_id: str, key_id: str) -> None:
    engine = make_engine(server.database_url)
    try:
        with engine.connect() as conn:
            destroys = conn.execute(select(key_events).where(
                key_events.c.key_id == key_id, key_events.c.action == "destroy")).all()
            votes = conn.execute(select(approval_votes).where(
                approval_votes.c.approval_id == approval_id)).all()
            state = conn.execute(select(approvals.c.state).where(
                approvals.c.id == approval_id)).scalar_one()
            key_state = conn.execute(select(keys.c.state).where(
                keys.c.id == key_id)).scalar_one()
    finally:
        engine.dispose()
    assert len(destroys) == 1, destroys
    assert len(votes) == 2 and state == "executed" and key_state == "destroyed"


def test_rest_flow(live_server: ServerProcess) -> None:
    t = _people(live_server)
    ns, key_id, ct = _namespace_with_key(live_server, t["so"])
    approval_id = _requested(live_server, ns, t["so"])

    mine = live_server.get(f"/v1/approvals/{approval_id}", token=t["so"])
    assert mine.status_code == 200 and mine.json()["state"] == "pending"
    assert mine.json()["arguments"] == {"namespace": ns}
    listed = live_server.get("/v1/approvals?state=pending", token=t["c1"]).json()
    assert approval_id in {a["id"] for a in listed["approvals"]}

    r = live_server.post(f"/v1/approvals/{approval_id}/approve", token=t["so"])
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    r = live_server.post(f"/v1/approvals/{approval_id}/approve", {"comment": "checked"},
                         token=t["c1"])
    assert r.status_code == 200 and (r.json()["state"], r.json()["approvals"]) == ("pending", 1)
    r = live_server.post(f"/v1/approvals/{approval_id}/approve", token=t["c1"])
    assert (r.status_code, r.json()["code"]) == (409, "already_exists")
    assert live_server.get(f"/v1/namespaces/{ns}").status_code == 200  # not yet

    r = live_server.post(f"/v1/approvals/{approval_id}/approve", token=t["c2"])
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "executed" and done["error"] is None
    assert done["result"]["keys_destroyed"] == 1 and done["decided_at"]
    assert [v["principal"].split("-")[0] for v in done["votes"]] == ["c1", "c2"]
    _one_execution(live_server, approval_id, key_id)

    assert live_server.get(f"/v1/namespaces/{ns}").json()["code"] == "not_found"
    r = live_server.post(f"/v1/keys/{key_id}/decrypt", {"ciphertext": ct})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = live_server.post("/v1/namespaces", {"name": ns})
    assert (r.status_code, r.json()["code"]) == (409, "already_exists")
    r = live_server.post(f"/v1/approvals/{approval_id}/reject", token=t["c3"])
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")


def test_namespace_routes(live_server: ServerProcess) -> None:
    ns = "crud-" + secrets.token_hex(4)
    r = live_server.post("/v1/namespaces", {"name": ns, "allow_legacy_rsa_2048": True,
                                            "rate_limit": 100})
    assert r.status_code == 201, r.text
    assert r.json()["rate_limit"] == 100 and r.json()["allow_legacy_rsa_2048"] is True
    assert ns in {n["name"] for n in live_server.get("/v1/namespaces").json()["namespaces"]}
    r = live_server.request("PATCH", f"/v1/namespaces/{ns}", {"rate_limit": None,
                                                              "description": "d"})
    assert r.status_code == 200 and r.json()["rate_limit"] is None, r.text
    r = live_server.request("PATCH", f"/v1/namespaces/{ns}", {"allow_legacy_rsa_2048": False})
    assert r.json()["description"] == "d" and r.json()["allow_legacy_rsa_2048"] is False
    r = live_server.request("DELETE", "/v1/namespaces/default")
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")
    r = live_server.request("DELETE", f"/v1/namespaces/{ns}")  # root: no approval
    assert r.status_code == 200 and r.json()["keys_destroyed"] == 0, r.text
    for method in ("GET", "DELETE"):
        r = live_server.request(method, f"/v1/namespaces/{ns}")
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = live_server.post("/v1/namespaces", {"name": "bad name"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")


def test_policy_routes(live_server: ServerProcess) -> None:
    r = live_server.get("/v1/policies/approval")
    assert r.status_code == 200
    (rule,) = r.json()["rules"]
    assert rule["required"] == 2 and "namespace.delete" in rule["operations"]
    t = _people(live_server, custodians=1)
    r = live_server.request("PUT", "/v1/policies/approval", r.json(), token=t["so"])
    assert (r.status_code, r.json()["code"]) == (202, "approval_required")
    assert "none can approve it" not in r.json()["detail"]  # a custodian exists
    r = live_server.request("PUT", "/v1/policies/approval", {"rules": [{"operations": ["x"]}]})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument")


def test_concurrent_approvals_on_two_nodes(live_server: ServerProcess,
                                           tmp_path: Path) -> None:
    """Six custodians approve at once, spread over two nodes on PostgreSQL (one node on
    SQLite): two votes count, the rest are refused, and the deletion runs exactly once."""
    nodes = [live_server]
    second: ServerProcess | None = None
    if live_server.backend == "postgresql":
        second = ServerProcess(data_dir=tmp_path, database_url=live_server.database_url,
                               backend="postgresql")
        second.start()
        second.passphrase = live_server.passphrase
        second.root_token = live_server.root_token
        second.unseal()
        nodes.append(second)
    try:
        t = _people(live_server, custodians=6)
        for _ in range(3):
            ns, key_id, _ct = _namespace_with_key(live_server, t["so"])
            approval_id = _requested(live_server, ns, t["so"])
            voters = [f"c{n}" for n in range(1, 7)]
            barrier = threading.Barrier(len(voters))
            answers: dict[str, httpx.Response] = {}

            def vote(n: int, name: str, approval_id: str = approval_id,
                     barrier: threading.Barrier = barrier,
                     answers: dict[str, httpx.Response] = answers) -> None:
                node = nodes[n % len(nodes)]
                with httpx.Client(base_url=node.addr, timeout=60) as http:
                    barrier.wait()
                    answers[name] = http.post(
                        f"/v1/approvals/{approval_id}/approve", json={},
                        headers={"Authorization": f"Bearer {t[name]}"})

            threads = [threading.Thread(target=vote, args=(n, v)) for n, v in enumerate(voters)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(60)
            statuses = sorted(r.status_code for r in answers.values())
            assert statuses == [200, 200, 409, 409, 409, 409], {
                k: r.text for k, r in answers.items()}
            assert any(r.json().get("state") == "executed" for r in answers.values())
            _one_execution(live_server, approval_id, key_id)
    finally:
        if second is not None:
            second.stop()


def test_sdk(live_server: ServerProcess) -> None:
    t = _people(live_server)
    ns = "sdk-" + secrets.token_hex(4)
    with Client(live_server.addr, t["so"]) as so:
        made = so.create_namespace(ns, description="sdk", rate_limit=5)
        assert made.keys == 0 and made.rate_limit == 5
        assert so.update_namespace(ns, rate_limit=None).rate_limit is None
        assert so.update_namespace(ns, description="x").description == "x"
        assert ns in {n.name for n in so.list_namespaces()}
        with pytest.raises(ApprovalRequired) as info:
            so.delete_namespace(ns)
        approval_id = info.value.approval_id
        assert approval_id and approval_id.startswith("ap-")
        assert so.get_approval(approval_id).state == "pending"
        assert approval_id in {a.id for a in so.iter_approvals()}  # its own
        with pytest.raises(PermissionDenied):
            so.approve(approval_id)
        assert so.get_approval_policy().rules[0].required == 2
    with Client(live_server.addr, t["c1"]) as c1:
        assert c1.approve(approval_id, "fine").approvals == 1
        with pytest.raises(AlreadyExists):
            c1.approve(approval_id)
    with Client(live_server.addr, t["c2"]) as c2:
        done = c2.approve(approval_id)
        assert done.state == "executed" and done.result == {
            "name": ns, "deleted_at": done.result["deleted_at"], "keys_destroyed": 0,
            "versions_destroyed": 0}
    with Client(live_server.addr, t["so"]) as so, pytest.raises(NotFound):
        so.get_namespace(ns)


def _cli(server: ServerProcess, token: str, *args: str,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "keykeeper", *args], input=stdin,
                          capture_output=True, env=env, timeout=60, check=False, text=True)


def test_cli(live_server: ServerProcess) -> None:
    t = _people(live_server)
    ns = "cli-" + secrets.token_hex(4)
    r = _cli(live_server, t["so"], "namespace", "create", ns, "--description", "cli")
    assert r.returncode == 0 and ns in r.stdout, r.stderr
    r = _cli(live_server, t["so"], "namespace", "update", ns, "--rate-limit", "7")
    assert r.returncode == 0 and "7/s" in r.stdout, r.stderr
    r = _cli(live_server, t["so"], "namespace", "list")
    assert ns in r.stdout
    r = _cli(live_server, t["so"], "--format", "json", "namespace", "delete", ns, "--yes")
    assert r.returncode == 4, (r.stdout, r.stderr)
    pending: dict[str, Any] = json.loads(r.stdout)
    approval_id = pending["approval_id"]
    assert pending["state"] == "pending"
    assert f"keykeeper approval approve {approval_id}" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli(live_server, t["c1"], "approval", "list", "--state", "pending")
    assert approval_id in r.stdout and "namespace.delete" in r.stdout
    r = _cli(live_server, t["c1"], "approval", "show", approval_id)
    assert "0 of 2" in r.stdout
    r = _cli(live_server, t["c1"], "approval", "approve", approval_id, "-m", "ok")
    assert r.returncode == 0 and "1 of 2" in r.stdout, r.stderr
    r = _cli(live_server, t["c1"], "approval", "approve", approval_id)
    assert r.returncode == 1 and r.stderr.startswith("error: already_exists:")
    r = _cli(live_server, t["c2"], "--format", "json", "approval", "approve", approval_id)
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "executed", r.stderr
    r = _cli(live_server, t["so"], "namespace", "show", ns)
    assert r.returncode == 1 and r.stderr.startswith("error: not_found:")
    r = _cli(live_server, t["so"], "policy", "approval", "show")
    assert r.returncode == 0 and "namespace.delete" in r.stdout
    doc = _cli(live_server, live_server.root_token, "--format", "json", "policy", "approval",
               "show").stdout
    r = _cli(live_server, live_server.root_token, "policy", "approval", "set",
             stdin=doc)  # root: applied at once (the same policy)
    assert r.returncode == 0 and "replaced" in r.stderr, r.stderr
    # reject path
    ns2 = "cli-" + secrets.token_hex(4)
    _cli(live_server, t["so"], "namespace", "create", ns2)
    r = _cli(live_server, t["so"], "--format", "json", "namespace", "delete", ns2, "--yes")
    approval_id = json.loads(r.stdout)["approval_id"]
    r = _cli(live_server, t["c3"], "approval", "reject", approval_id, "--comment", "no")
    assert r.returncode == 0 and "rejected" in r.stdout, r.stderr
