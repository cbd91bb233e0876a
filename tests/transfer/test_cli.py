"""The CLI's import-params, import and export against a real server: files in, files out;
the wrapping itself done by pyca/cryptography as an outside tool would."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from typer.testing import CliRunner

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from tests.support.server import ServerProcess

from .client_side import rsa_key, spki_pem, unwrap, wrap


def _run(server: ServerProcess, *args: str) -> str:
    env = {"KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": server.root_token}
    result = CliRunner().invoke(app, ["--format", "json", *args], env=env, obj=State())
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_import_then_export(live_server: ServerProcess, tmp_path: Path) -> None:
    name = "cli-" + secrets.token_hex(4)
    _run(live_server, "key", "create", name, "--algorithm", "AES_256_GCM", "--origin",
         "external", "--exportable")
    pub = tmp_path / "wrapping.pem"
    params = json.loads(_run(live_server, "key", "import-params", name, "--public-key-out",
                             str(pub)))
    material = b"\x00" + os.urandom(31)
    wrapped = tmp_path / "wrapped.bin"
    wrapped.write_bytes(wrap(pub.read_text(), material, params["wrapping_algorithm"]))
    key = json.loads(_run(live_server, "key", "import", name, "--import-token",
                          params["import_token"], "--material-file", str(wrapped),
                          "--format", "raw"))
    assert key["primary_version"] == 1 and key["state"] == "active"
    caller = rsa_key(3072)
    (tmp_path / "mine.pem").write_text(spki_pem(caller))
    out = tmp_path / "export.bin"
    shown = json.loads(_run(live_server, "key", "export", name, "--wrapping-key-file",
                            str(tmp_path / "mine.pem"), "--out", str(out)))
    assert unwrap(caller, out.read_bytes(), shown["wrapping_algorithm"]) == material
