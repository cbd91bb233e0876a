"""``--allow-compromised`` in the CLI, over real HTTP to a live server (both backends)."""

from __future__ import annotations

import secrets

from typer.testing import CliRunner

from keykeeper.cli.main import app
from tests.support.server import ServerProcess, b64


def test_decrypt_and_verify_mac_need_allow_compromised(live_server: ServerProcess) -> None:
    env = {"KEYKEEPER_ADDR": live_server.addr, "KEYKEEPER_TOKEN": live_server.root_token}
    enc, mac = f"cli-{secrets.token_hex(3)}", f"cli-mac-{secrets.token_hex(3)}"
    live_server.create_key(enc)
    live_server.create_key(mac, purpose="mac", algorithm="HMAC_SHA256")
    ct = live_server.post(f"/v1/keys/{enc}/encrypt", {"plaintext": b64(b"hello")}).json()[
        "ciphertext"]
    tag = live_server.post(f"/v1/keys/{mac}/mac", {"message": b64(b"m")}).json()["mac"]
    for name in (enc, mac):
        assert live_server.post(f"/v1/keys/{name}/compromise",
                                {"reason": "leak"}).status_code == 200
    runner = CliRunner()
    refused = runner.invoke(app, ["decrypt", enc, ct], env=env)
    assert refused.exit_code != 0 and "allow_compromised" in refused.output
    ok = runner.invoke(app, ["decrypt", enc, ct, "--allow-compromised"], env=env)
    assert ok.exit_code == 0 and ok.stdout_bytes == b"hello"
    assert runner.invoke(app, ["verify-mac", mac, tag, "--message", "m"], env=env).exit_code != 0
    valid = runner.invoke(app, ["verify-mac", mac, tag, "--message", "m",
                                "--allow-compromised"], env=env)
    assert valid.exit_code == 0, valid.output
