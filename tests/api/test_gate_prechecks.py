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
