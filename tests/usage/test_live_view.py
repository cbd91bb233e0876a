"""The versions view shows the exact count at once on the node that did the work (its
unused reservations are taken off), not only after the reservation goes back (~1 s)."""

from __future__ import annotations

import secrets

from tests.support.server import ServerProcess, b64


def test_versions_view_counts_exactly_right_after_use(live_server: ServerProcess) -> None:
    name = "view-" + secrets.token_hex(4)
    live_server.create_key(name, usage_limit=1000)
    for _ in range(10):
        r = live_server.post(f"/v1/keys/{name}/encrypt", {"plaintext": b64(b"x")})
        assert r.status_code == 200, r.text
    versions = live_server.get(f"/v1/keys/{name}/versions").json()["versions"]
    assert versions[0]["protect_count"] == 10
