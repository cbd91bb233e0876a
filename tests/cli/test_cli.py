"""CLI parsing, output formats, stdin/file handling and the one-line errors."""

from __future__ import annotations

import base64
import json
import sys
import types
from pathlib import Path
from typing import Any

import httpx
import pytest

from keykeeper.cli._state import State
from keykeeper.cli.main import app

from .conftest import KEY_JSON, Cli


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- global options, output, errors -------------------------------------------------------


def test_env_addr_and_token_are_used(cli: Cli) -> None:
    cli.reply(KEY_JSON)
    res = cli.run(["key", "show", "pki:root"], env={"KEYKEEPER_TOKEN": "s.abc"})
    assert res.exit_code == 0, res.stderr
    assert str(cli.last.url) == "http://kk.test:8200/v1/keys/pki%3Aroot"
    assert cli.last.headers["authorization"] == "Bearer s.abc"


def test_flags_override_env(cli: Cli) -> None:
    cli.reply(KEY_JSON)
    res = cli.run(["--addr", "http://other:1", "--token", "t2", "key", "show", "orders"])
    assert res.exit_code == 0
    assert cli.last.url.host == "other" and cli.last.headers["authorization"] == "Bearer t2"


def test_key_show_table_and_json(cli: Cli) -> None:
    cli.reply(KEY_JSON)
    res = cli.run(["key", "show", "orders"])
    assert "default:orders" in res.stdout and "90d" in res.stdout and "team=a" in res.stdout
    cli.reply(KEY_JSON)
    res = cli.run(["--format", "json", "key", "show", "orders"])
    doc = json.loads(res.stdout)
    assert doc["id"] == "k_01" and doc["rotation_period"] == 7776000
    assert doc["created_at"] == "2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("not_found", 404),
        ("permission_denied", 403),
        ("sealed", 503),
        ("failed_precondition", 409),
        ("unauthenticated", 401),
    ],
)
def test_server_error_is_one_line_exit_1(cli: Cli, code: str, status: int) -> None:
    cli.problem(code, status, "key 'default:foo' not found")
    res = cli.run(["key", "show", "foo"])
    assert res.exit_code == 1
    assert res.stderr == f"error: {code}: key 'default:foo' not found\n"
    assert res.stdout == ""
    assert "Traceback" not in res.output


def test_decryption_failed_is_uniform(cli: Cli) -> None:
    cli.problem("decryption_failed", 400, "whatever the server says")
    res = cli.run(["decrypt", "orders", "keykeeper:v1:k:1:AAAA"])
    assert res.exit_code == 1
    assert res.stderr == "error: decryption_failed: decryption failed\n"


def test_connection_failure_exit_3() -> None:
    from typer.testing import CliRunner

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    res = CliRunner().invoke(
        app,
        ["--addr", "http://127.0.0.1:9", "status"],
        obj=State(transport=httpx.MockTransport(refuse)),
    )
    assert res.exit_code == 3
    assert res.stderr.startswith("error: unavailable: cannot reach keykeeper at http://127.0.0.1:9")
    assert res.stderr.count("\n") == 1


def test_usage_error_exit_2(cli: Cli) -> None:
    res = cli.run(["encrypt", "orders", "--plaintext", "x", "--in", "f"])
    assert res.exit_code == 2
    res = cli.run(["key", "show"])
    assert res.exit_code == 2
    res = cli.run(["encrypt", "orders", "--context", "novalue", "--plaintext", "x"])
    assert res.exit_code == 2
    res = cli.run(["encrypt", "orders", "--in", "/nonexistent/file"])
    assert res.exit_code == 2
    assert cli.requests == []


# -- system ---------------------------------------------------------------------------------


def test_status(cli: Cli) -> None:
    cli.reply({"initialized": True, "sealed": True, "version": "0.1.0"})
    res = cli.run(["status"])
    assert res.exit_code == 0
    assert "sealed" in res.stdout and "yes" in res.stdout and "http://kk.test:8200" in res.stdout
    assert "authorization" not in cli.last.headers
    cli.reply({"initialized": True, "sealed": False, "version": "0.1.0"})
    assert json.loads(cli.run(["--format", "json", "status"]).stdout)["sealed"] is False


def test_init_prints_secrets_once_with_warning(cli: Cli, tmp_path: Path) -> None:
    pp = tmp_path / "pp"
    pp.write_text("correct horse\n")
    cli.reply({"root_token": "s.root", "unseal_passphrase": "correct horse"})
    res = cli.run(["init", "--passphrase-file", str(pp)])
    assert res.exit_code == 0
    assert cli.last_json() == {"passphrase": "correct horse"}
    assert "s.root" in res.stdout and "correct horse" in res.stdout
    assert "WARNING" in res.stderr and "only once" in res.stderr
    cli.reply({"root_token": "s.root", "unseal_passphrase": "gen"})
    res = cli.run(["--format", "json", "init"])
    out = json.loads(res.stdout)
    assert {k: out[k] for k in ("root_token", "unseal_passphrase", "seal_type")} == {
        "root_token": "s.root", "unseal_passphrase": "gen", "seal_type": "passphrase"}
    assert cli.last_json() == {}


def test_unseal_sources(cli: Cli, tmp_path: Path) -> None:
    health = {"initialized": True, "sealed": False, "version": "1"}
    cli.reply(health)  # the CLI asks the seal type first, whatever the source
    cli.reply(health)
    assert cli.run(["unseal"], env={"KEYKEEPER_UNSEAL_PASSPHRASE": "from-env"}).exit_code == 0
    assert cli.last_json() == {"passphrase": "from-env"}
    f = tmp_path / "pp"
    f.write_text("from-file\n")
    cli.reply(health)
    cli.reply(health)
    assert cli.run(["unseal", "--passphrase-file", str(f)]).exit_code == 0
    assert cli.last_json() == {"passphrase": "from-file"}
    cli.reply(health)  # no passphrase source: the CLI asks the seal type first
    cli.reply(health)
    res = cli.run(["unseal"], input="typed\n")
    assert res.exit_code == 0, res.output
    assert cli.last_json() == {"passphrase": "typed"}
    assert "typed" not in res.output


def test_seal(cli: Cli) -> None:
    cli.reply({"initialized": True, "sealed": True, "version": "1"})
    assert cli.run(["seal"]).exit_code == 0
    assert cli.last.url.path == "/v1/sys/seal"


def test_server_calls_config_lazily(monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    seen: dict[str, Any] = {}
    fake = types.ModuleType("keykeeper.config")
    fake.run_server = lambda **kw: seen.update(kw)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keykeeper.config", fake)
    res = cli.run(
        ["server", "--dev", "--dev-root-token", "root", "--listen", "0.0.0.0:9", "--workers", "2"]
    )
    assert res.exit_code == 0, res.output
    assert seen == {
        "listen": "0.0.0.0:9",
        "data_dir": None,
        "database_url": None,
        "dev": True,
        "dev_root_token": "root",
        "workers": 2,
        "tls_cert": None,
        "tls_key": None,
        "tls_client_ca": None,
        "tls_client_auth": None,
        "insecure_no_tls": False,
        "kmip_listen": None,
    }
    assert cli.run(["server", "--dev-root-token", "x"]).exit_code == 2


# -- keys -----------------------------------------------------------------------------------


def test_key_create(cli: Cli) -> None:
    cli.reply(KEY_JSON, status=201)
    res = cli.run(
        [
            "key",
            "create",
            "pki:root",
            "--purpose",
            "sign",
            "--algorithm",
            "ED25519",
            "--rotation-period",
            "90d",
            "--label",
            "a=b",
            "--label",
            "c=d=e",
            "--exportable",
        ]
    )
    assert res.exit_code == 0, res.output
    assert cli.last_json() == {
        "name": "root",
        "namespace": "pki",
        "purpose": "sign",
        "algorithm": "ED25519",
        "rotation_period": "90d",
        "labels": {"a": "b", "c": "d=e"},
        "exportable": True,
    }
    cli.reply(KEY_JSON, status=201)
    cli.run(["key", "create", "x", "--rotation-period", "3600"])
    assert cli.last_json() == {"name": "x", "rotation_period": 3600}


def test_key_list_all_pages(cli: Cli) -> None:
    cli.reply({"keys": [KEY_JSON], "next_page_token": "t2"})
    cli.reply({"keys": [dict(KEY_JSON, id="k_02", name="second")]})
    res = cli.run(["key", "list", "--namespace", "default", "--label", "team=a"])
    assert res.exit_code == 0
    assert "default:orders" in res.stdout and "default:second" in res.stdout
    assert cli.requests[0].url.params["label"] == "team=a"
    assert cli.requests[1].url.params["page_token"] == "t2"


def test_key_list_one_page_json(cli: Cli) -> None:
    cli.reply({"keys": [KEY_JSON], "next_page_token": "t2"})
    res = cli.run(["--format", "json", "key", "list", "--page-size", "1"])
    doc = json.loads(res.stdout)
    assert doc["next_page_token"] == "t2" and doc["keys"][0]["id"] == "k_01"
    assert len(cli.requests) == 1 and cli.last.url.params["page_size"] == "1"


@pytest.mark.parametrize(
    ("args", "path", "body"),
    [
        (["rotate", "k"], "/v1/keys/k/rotate", {}),
        (["disable", "k"], "/v1/keys/k/disable", {}),
        (["enable", "k"], "/v1/keys/k/enable", {}),
        (["cancel-destruction", "k"], "/v1/keys/k/cancel-destruction", {}),
        (
            ["schedule-destruction", "k", "--pending-days", "7"],
            "/v1/keys/k/schedule-destruction",
            {"pending_days": 7},
        ),
        (["compromise", "k", "--reason", "leaked"], "/v1/keys/k/compromise", {"reason": "leaked"}),
        (
            ["update", "k", "--description", "d", "--label", "x=y"],
            "/v1/keys/k",
            {"description": "d", "labels": {"x": "y"}},
        ),
        (["update", "k", "--clear-labels"], "/v1/keys/k", {"labels": {}}),
    ],
)
def test_key_lifecycle(cli: Cli, args: list[str], path: str, body: dict[str, Any]) -> None:
    cli.reply(KEY_JSON)
    res = cli.run(["key", *args])
    assert res.exit_code == 0, res.output
    assert cli.last.url.path == path and cli.last_json() == body


def test_key_versions_and_destroy(cli: Cli) -> None:
    v = {
        "version": 1,
        "state": "active",
        "created_at": "2025-01-01T00:00:00Z",
        "destroyed_at": None,
    }
    cli.reply({"versions": [v]})
    res = cli.run(["key", "versions", "k"])
    assert res.exit_code == 0 and "active" in res.stdout
    cli.reply(dict(v, state="destroyed", destroyed_at="2025-02-01T00:00:00Z"))
    res = cli.run(["--format", "json", "key", "destroy-version", "k", "1", "--yes"])
    assert json.loads(res.stdout)["state"] == "destroyed"
    assert cli.last.url.path == "/v1/keys/k/versions/1/destroy"
    assert cli.run(["key", "schedule-destruction", "k", "--pending-days", "3"]).exit_code == 2


# -- crypto ---------------------------------------------------------------------------------

CT = "keykeeper:v1:k_01:1:AAAA"


def test_encrypt_sources(cli: Cli, tmp_path: Path) -> None:
    for _ in range(3):
        cli.reply({"ciphertext": CT, "key_version": 1})
    res = cli.run(["encrypt", "orders", "--plaintext", "héllo", "--context", "o=1"])
    assert res.stdout == CT + "\n"
    assert cli.last_json() == {"plaintext": b64("héllo".encode()), "context": {"o": "1"}}
    f = tmp_path / "in.bin"
    f.write_bytes(b"\x00\x01")
    cli.run(["encrypt", "orders", "--in", str(f)])
    assert cli.last_json() == {"plaintext": b64(b"\x00\x01")}
    res = cli.run(["--format", "json", "encrypt", "orders"], input=b"\xff\xfe")
    assert cli.last_json() == {"plaintext": b64(b"\xff\xfe")}
    assert json.loads(res.stdout) == {"ciphertext": CT, "key_version": 1}


def test_decrypt_raw_stdout_json_and_out(cli: Cli, tmp_path: Path) -> None:
    answer = {"plaintext": b64(b"\x00raw\xff"), "key_version": 1}
    cli.reply(answer)
    res = cli.run(["decrypt", "orders", CT])
    assert res.stdout_bytes == b"\x00raw\xff"
    assert cli.last_json() == {"ciphertext": CT}
    cli.reply(answer)
    res = cli.run(["--format", "json", "decrypt", "orders", "--context", "a=b"], input=CT + "\n")
    assert json.loads(res.stdout) == {"plaintext": b64(b"\x00raw\xff"), "key_version": 1}
    assert cli.last_json() == {"ciphertext": CT, "context": {"a": "b"}}
    cli.reply(answer)
    out = tmp_path / "pt"
    ct_file = tmp_path / "ct"
    ct_file.write_text(CT + "\n")
    res = cli.run(["decrypt", "orders", "--in", str(ct_file), "--out", str(out)])
    assert res.exit_code == 0 and res.stdout == "" and out.read_bytes() == b"\x00raw\xff"


def test_rewrap_and_data_key(cli: Cli) -> None:
    cli.reply({"ciphertext": CT + "2", "key_version": 2})
    assert cli.run(["rewrap", "orders", CT]).stdout == CT + "2\n"
    cli.reply({"ciphertext": CT, "key_version": 1, "plaintext": b64(b"k" * 32)})
    res = cli.run(["data-key", "orders", "--key-spec", "AES_128", "--no-plaintext"])
    assert res.exit_code == 0
    assert cli.last_json() == {"key_spec": "AES_128", "include_plaintext": False}
    cli.reply({"ciphertext": CT, "key_version": 1, "plaintext": b64(b"k" * 32)})
    res = cli.run(["--format", "json", "data-key", "orders"])
    assert json.loads(res.stdout)["plaintext"] == b64(b"k" * 32)


def test_sign_message_and_digest(cli: Cli, tmp_path: Path) -> None:
    cli.reply({"signature": b64(b"sig"), "key_version": 1})
    res = cli.run(["sign", "signer", "--message", "hi", "--signature-format", "p1363"])
    assert res.stdout == b64(b"sig") + "\n"
    assert cli.last_json() == {"message": b64(b"hi"), "signature_format": "p1363"}
    cli.reply({"signature": b64(b"sig"), "key_version": 1})
    out = tmp_path / "sig"
    res = cli.run(["sign", "signer", "--digest-hex", "ab" * 32, "--out", str(out)])
    assert cli.last_json() == {"digest": b64(b"\xab" * 32)}
    assert out.read_bytes() == b"sig"
    assert cli.run(["sign", "signer", "--digest-hex", "zz"]).exit_code == 2
    assert cli.run(["sign", "signer", "--digest-hex", "ab", "--message", "m"]).exit_code == 2


def test_verify_exit_status(cli: Cli, tmp_path: Path) -> None:
    cli.reply({"valid": True, "key_version": 1})
    res = cli.run(["verify", "signer", b64(b"sig")], input=b"msg")
    assert res.exit_code == 0 and "valid" in res.stdout
    assert cli.last_json() == {"message": b64(b"msg"), "signature": b64(b"sig")}
    cli.reply({"valid": False, "key_version": 1})
    f = tmp_path / "sig"
    f.write_bytes(b"\x30\x01")
    res = cli.run(
        ["--format", "json", "verify", "signer", "--signature-file", str(f), "--message", "m"]
    )
    assert res.exit_code == 1 and json.loads(res.stdout)["valid"] is False
    assert cli.last_json()["signature"] == b64(b"\x30\x01")
    assert cli.run(["verify", "signer", "!!notb64", "--message", "m"]).exit_code == 2
    assert cli.run(["verify", "signer", "--message", "m"]).exit_code == 2


def test_mac_and_verify_mac(cli: Cli) -> None:
    cli.reply({"mac": b64(b"tag"), "key_version": 1})
    assert cli.run(["mac", "hmac", "--message", "m"]).stdout == b64(b"tag") + "\n"
    cli.reply({"valid": True, "key_version": 1})
    res = cli.run(["verify-mac", "hmac", b64(b"tag"), "--message", "m"])
    assert res.exit_code == 0
    assert cli.last_json() == {"message": b64(b"m"), "mac": b64(b"tag")}
    cli.reply({"valid": False, "key_version": 1})
    assert cli.run(["verify-mac", "hmac", b64(b"bad"), "--message", "m"]).exit_code == 1


def test_public_key_kem_random(cli: Cli) -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n"
    cli.reply({"public_key": pem, "key_version": 2, "algorithm": "ED25519"})
    res = cli.run(["public-key", "signer", "--version", "2"])
    assert res.stdout == pem and cli.last.url.params["version"] == "2"
    cli.reply({"shared_secret": b64(b"ss"), "ciphertext": b64(b"ct"), "key_version": 1})
    res = cli.run(["--format", "json", "encapsulate", "kem"])
    assert json.loads(res.stdout)["ciphertext"] == b64(b"ct")
    cli.reply({"shared_secret": b64(b"ss"), "key_version": 1})
    res = cli.run(["decapsulate", "kem", b64(b"ct")])
    assert res.stdout == b64(b"ss") + "\n"
    assert cli.last_json() == {"ciphertext": b64(b"ct")}
    cli.reply({"bytes": b64(b"\x01\x02")})
    assert cli.run(["random", "2", "--hex"]).stdout == "0102\n"
    assert cli.last_json() == {"length": 2}
    assert cli.run(["random", "0"]).exit_code == 2


def test_global_options_are_hoisted_from_after_the_subcommand() -> None:
    from keykeeper.cli.main import hoist_global_options
    assert hoist_global_options(["key", "list", "--format", "json"]) == [
        "--format", "json", "key", "list"]
    assert hoist_global_options(["encrypt", "k", "--addr=http://x", "--plaintext", "a"]) == [
        "--addr=http://x", "encrypt", "k", "--plaintext", "a"]
    assert hoist_global_options(["decrypt", "k", "--", "--format"]) == [
        "decrypt", "k", "--", "--format"]


def test_destroy_version_needs_yes_when_not_interactive(cli: Any) -> None:
    res = cli.run(["key", "destroy-version", "k", "1"])
    assert res.exit_code == 2
    assert "--yes" in res.output


def test_usage_errors_are_one_line() -> None:
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "keykeeper", "key", "compromise", "k"],
                       capture_output=True, timeout=60, check=False)
    assert r.returncode == 2
    assert r.stderr.decode().strip().splitlines() == [
        "error: usage: Missing option '--reason'. (see --help)"]
    v = subprocess.run([sys.executable, "-m", "keykeeper", "--version"], capture_output=True,
                       timeout=60, check=False)
    assert v.returncode == 0 and v.stdout.decode().startswith("keykeeper ")


def test_tables_never_cut_cells(capsys: pytest.CaptureFixture[str]) -> None:
    from keykeeper.cli._state import emit_table
    long_name = "default:" + "n" * 60
    emit_table(["name", "id"], [[long_name, "k-" + "a" * 32]])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "ID"]
    assert out[1].split() == [long_name, "k-" + "a" * 32]
