"""Recovery: the holder of the unseal passphrase can get a short-lived root token."""

from __future__ import annotations

from tests.support.server import ServerProcess


def test_generate_root(live_server: ServerProcess) -> None:
    r = live_server.post("/v1/sys/generate-root", {"passphrase": "not the passphrase"},
                         token="")
    assert (r.status_code, r.json()["code"]) == (400, "invalid_argument"), r.text
    r = live_server.post("/v1/sys/generate-root", {"passphrase": live_server.passphrase},
                         token="")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expires_in"] == 3600 and body["root_token"] != live_server.root_token
    who = live_server.get("/v1/tokens/self", token=body["root_token"])
    assert who.status_code == 200 and who.json()["principal"] == "root", who.text
    listed = live_server.get("/v1/tokens?principal=root").json()
    mine = [t for t in listed["tokens"] if t["accessor"] == who.json()["accessor"]]
    assert mine and mine[0]["expires_at"], listed
