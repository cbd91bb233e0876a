"""A dual-controlled request that could never run is refused at once, not after approval."""

from __future__ import annotations

import secrets

from tests.support.principals import add_principal
from tests.support.server import ServerProcess


def test_destroy_version_prechecked_before_approval(live_server: ServerProcess) -> None:
    name = f"pre-{secrets.token_hex(4)}"
    live_server.create_key(name, purpose="encrypt")
    token = add_principal(live_server.database_url, f"co-{secrets.token_hex(4)}",
                          ("crypto-officer",))
    for version, code in ((1, "failed_precondition"), (9, "not_found")):
        r = live_server.post(f"/v1/keys/{name}/versions/{version}/destroy", {}, token=token)
        assert r.json()["code"] == code, (version, r.text)
    assert live_server.post(f"/v1/keys/{name}/rotate", {}, token=token).status_code == 200
    r = live_server.post(f"/v1/keys/{name}/versions/1/destroy", {}, token=token)
    assert (r.status_code, r.json()["code"]) == (202, "approval_required"), r.text
    assert r.json()["approval_id"]


def test_policy_refuses_operations_that_never_wait(live_server: ServerProcess) -> None:
    current = live_server.get("/v1/policies/approval").json()
    for ops in (["key.disable"], ["token.create", "principal.delete"], ["namespace.create"],
                ["key.rotate"]):
        rule = {"operations": ops, "required": 1, "approver_roles": ["key-custodian"]}
        r = live_server.request("PUT", "/v1/policies/approval", {"rules": [rule]})
        assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), (ops, r.text)
        assert "cannot be put under dual control" in r.json()["detail"]
    assert live_server.get("/v1/policies/approval").json() == current
    # Putting back what GET answered is always accepted.
    r = live_server.request("PUT", "/v1/policies/approval", current)
    assert r.status_code == 200, r.text
