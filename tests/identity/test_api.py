"""The access-control REST API on SQLite and PostgreSQL (in process): shapes, status
codes, problem+json, 202 approval_required, and tokens end to end."""

from __future__ import annotations

import re

from tests.identity.conftest import Api, unique
from tests.integration.conftest import Node

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def problem(r: object, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = r.json()  # type: ignore[attr-defined]
    assert body["code"] == code and body["status"] == status
    return body


def test_principal_crud(api: Api) -> None:
    name = unique("svc")
    r = api.post("/v1/principals", {"name": name, "roles": ["application"],
                                    "metadata": {"tenant": "t1"}, "rate_limit": 10,
                                    "certificate_subjects": [f"DNS:{name}.example"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"name", "kind", "roles", "metadata", "certificate_subjects",
                         "rate_limit", "disabled", "created_by", "created_at", "updated_at"}
    assert body["kind"] == "service" and body["created_by"] == "root"
    assert RFC3339.fullmatch(body["created_at"])
    problem(api.post("/v1/principals", {"name": name}), 409, "already_exists")
    assert api.get(f"/v1/principals/{name}").json() == body
    listed = api.get("/v1/principals", role="application").json()["principals"]
    assert name in [p["name"] for p in listed]
    r = api.request("PATCH", f"/v1/principals/{name}", {"rate_limit": None, "kind": "person"})
    assert r.status_code == 200, r.text
    assert (r.json()["rate_limit"], r.json()["kind"], r.json()["roles"]) == (
        None, "person", ["application"])
    r = api.request("PATCH", f"/v1/principals/{name}", {"disabled": True})
    assert r.json()["disabled"] is True
    r = api.request("DELETE", f"/v1/principals/{name}")
    assert r.status_code == 200 and r.json() == {"name": name, "tokens_revoked": 0,
                                                 "grants_deleted": 0}
    problem(api.get(f"/v1/principals/{name}"), 404, "not_found")
    problem(api.request("DELETE", f"/v1/principals/{name}"), 404, "not_found")
    problem(api.post("/v1/principals", {"name": "root"}), 400, "invalid_argument")
    problem(api.post("/v1/principals", {"name": unique("x"), "roles": ["crypto-officer",
                                                                       "auditor"]}),
            403, "permission_denied")


def test_tokens_end_to_end(api: Api) -> None:
    name = unique("app")
    api.post("/v1/principals", {"name": name, "roles": ["application"]})
    r = api.post("/v1/tokens", {"principal": name, "ttl": "1d", "display_name": "ci"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert set(made) == {"token", "accessor", "principal", "display_name", "expires_at", "ttl"}
    assert made["ttl"] == 86400 and RFC3339.fullmatch(made["expires_at"])
    me = api.get("/v1/tokens/self", token=made["token"]).json()
    assert (me["principal"], me["accessor"], me["roles"], me["expires_at"]) == (
        name, made["accessor"], ["application"], made["expires_at"])
    listed = api.get("/v1/tokens", token=made["token"]).json()["tokens"]
    assert [t["accessor"] for t in listed] == [made["accessor"]]
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    assert listed[0]["state"] == "active"
    assert api.get("/v1/tokens", principal=name).json()["tokens"] == listed
    r = api.post(f"/v1/tokens/{made['accessor']}/renew", token=made["token"])
    assert r.status_code == 200 and r.json()["state"] == "active"
    r = api.post(f"/v1/tokens/{made['accessor']}/revoke", token=made["token"])
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    problem(api.get("/v1/tokens/self", token=made["token"]), 401, "unauthenticated")
    problem(api.post("/v1/tokens/acc-nothing/revoke"), 404, "not_found")
    problem(api.post("/v1/tokens", {"principal": name, "ttl": 5}), 400, "invalid_argument")
    root = api.get("/v1/tokens/self").json()
    assert root["principal"] == "root" and root["expires_at"] is None


def test_roles_grants_and_sod(api: Api) -> None:
    role = unique("role")
    r = api.post("/v1/roles", {"name": role, "operations": ["encrypt", "decrypt"],
                               "description": "payments"})
    assert r.status_code == 201, r.text
    assert r.json()["builtin"] is False
    assert role in [x["name"] for x in api.get("/v1/roles").json()["roles"]]
    r = api.request("PATCH", f"/v1/roles/{role}", {"operations": ["encrypt"]})
    assert r.json()["operations"] == ["encrypt"] and r.json()["description"] == "payments"
    r = api.post("/v1/grants", {"grantee": f"role:{role}", "operations": ["encrypt"],
                                "namespace": "payments", "key_pattern": "card-*",
                                "labels": {"env": "prod"},
                                "condition": "context.tenant == principal.metadata.tenant"})
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["grantee"] == f"role:{role}" and grant["id"].startswith("g-")
    assert api.get(f"/v1/grants/{grant['id']}").json() == grant
    assert api.get("/v1/grants", grantee=f"role:{role}").json()["grants"] == [grant]
    assert grant in api.get("/v1/grants", namespace="payments").json()["grants"]
    problem(api.post("/v1/grants", {"grantee": "role:nope", "operations": ["encrypt"]}),
            400, "invalid_argument")
    problem(api.request("DELETE", "/v1/roles/auditor"), 409, "failed_precondition")
    r = api.request("DELETE", f"/v1/roles/{role}")
    assert r.json() == {"name": role, "grants_deleted": 1}
    problem(api.get(f"/v1/grants/{grant['id']}"), 404, "not_found")
    sod = api.get("/v1/policies/separation-of-duties").json()
    assert sod == {"conflicts": [["crypto-officer", "auditor"],
                                 ["security-officer", "application"]]}
    r = api.request("PUT", "/v1/policies/separation-of-duties", sod)
    assert r.status_code == 200 and r.json() == sod


def test_dual_control_answers_202(api: Api) -> None:
    officer = api.caller(("security-officer",))
    r = api.post("/v1/grants", {"grantee": "role:application", "operations": ["encrypt"],
                                "key_pattern": "x-*"}, token=officer.token)
    body = problem(r, 202, "approval_required")
    assert str(body["approval_id"]) and str(body["approval_id"]) in str(body["detail"])
    r = api.get(f"/v1/approvals/{body['approval_id']}", token=officer.token)
    assert r.status_code == 200 and r.json()["operation"] == "grant.create"


def test_permission_denied_names_the_permission(api: Api) -> None:
    app = api.caller(("application",))
    for method, path, perm in (("GET", "/v1/principals", "principal.list"),
                               ("GET", "/v1/roles", "role.list"),
                               ("GET", "/v1/grants", "grant.list"),
                               ("POST", "/v1/tokens/revoke-root", "token.revoke_root"),
                               ("GET", "/v1/policies/separation-of-duties", "sod_policy.get")):
        body = problem(api.request(method, path, {} if method == "POST" else None,
                                   token=app.token), 403, "permission_denied")
        assert f"'{perm}'" in str(body["detail"])


def test_revoke_root_over_rest(fresh_node: Node) -> None:
    api = Api(fresh_node)
    body = problem(api.post("/v1/tokens/revoke-root"), 409, "failed_precondition")
    assert "security-officer" in str(body["detail"])
    api.post("/v1/principals", {"name": "alice", "kind": "person",
                                "roles": ["security-officer"]})
    alice = api.post("/v1/tokens", {"principal": "alice"}).json()["token"]
    api.post("/v1/principals", {"name": "carol", "roles": ["key-custodian"]})
    api.post("/v1/tokens", {"principal": "carol"})
    api.post("/v1/principals", {"name": "dave", "roles": ["key-custodian"]})
    body = problem(api.post("/v1/tokens/revoke-root", token=alice), 409, "failed_precondition")
    # dave has no token yet: nobody can act as him, so he cannot approve.
    assert "'key-custodian'" in str(body["detail"]) and "1 more missing" in str(body["detail"])
    api.post("/v1/tokens", {"principal": "dave"})
    r = api.post("/v1/tokens/revoke-root", token=alice)
    assert r.status_code == 200 and r.json() == {"revoked": 1}
    problem(api.get("/v1/tokens/self"), 401, "unauthenticated")
    assert api.get("/v1/principals/alice", token=alice).status_code == 200
