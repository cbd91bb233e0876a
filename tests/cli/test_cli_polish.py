"""What a new user and a breaker found in the root-of-trust commands (issue 6 polish): CLI
wording under the shamir seal, nonces, rekey output, status's unseal nonce, the key
origin and version material, export labels, the import token from a file or a prompt,
a closed stdout pipe, and ``server --help``. Against real servers where one is needed."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from tests.cli.conftest import Cli
from tests.support.server import ServerProcess
from tests.transfer.client_side import wrap

KEYKEEPER = [sys.executable, "-c", "from keykeeper.cli.main import main; main()"]


def run(server: ServerProcess, *args: str, input: str | None = None,
        token: str | None = None) -> Result:
    env = {"KEYKEEPER_ADDR": server.addr,
           "KEYKEEPER_TOKEN": server.root_token if token is None else token,
           "KEYKEEPER_UNSEAL_PASSPHRASE": "", "KEYKEEPER_UNSEAL_SHARE": ""}
    return CliRunner().invoke(app, list(args), env=env, obj=State(), input=input)


@pytest.fixture(scope="module")
def shamir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        tuple[ServerProcess, list[str]]]:
    data = tmp_path_factory.mktemp("shamir-cli")
    server = ServerProcess(data_dir=data, database_url=f"sqlite:///{data / 'kk.db'}")
    try:
        server.start()
        r = server.http.post("/v1/sys/init", json={"seal": "shamir", "secret_shares": 3,
                                                   "secret_threshold": 2})
        assert r.status_code == 200, r.text
        server.root_token = r.json()["root_token"]
        yield server, list(r.json()["keys"])
    finally:
        server.stop()


def _share_file(tmp_path: Path, share: str, name: str = "share") -> str:
    path = tmp_path / name
    path.write_text(share + "\n")
    return str(path)


def test_shamir_unseal_wording_nonce_and_status(shamir_server: tuple[ServerProcess, list[str]],
                                                tmp_path: Path) -> None:
    server, shares = shamir_server
    pp = tmp_path / "pp"
    pp.write_text("a passphrase of some length\n")
    res = run(server, "unseal", "--passphrase-file", str(pp))
    assert res.exit_code == 2, res.output
    assert "--share-file" in res.output and "prompted" in res.output
    assert "give key" not in res.output and "base64 share" not in res.output

    res = run(server, "unseal", "--share-file", _share_file(tmp_path, shares[0]))
    assert res.exit_code == 0, res.output
    nonce = server.http.get("/v1/sys/health").json()["nonce"]
    status = run(server, "status")
    assert "unseal progress  1/2" in status.stdout
    assert f"unseal nonce     {nonce}" in status.stdout, status.stdout
    # A stale nonce while an attempt is in progress: it says so.
    r = server.http.post("/v1/sys/unseal", json={"key": shares[1], "nonce": "0" * 32})
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition"), r.text
    assert "does not match the attempt in progress" in r.json()["detail"]
    assert "completed or reset" not in r.json()["detail"]
    # With nothing in progress, the old wording fits.
    assert server.http.post("/v1/sys/unseal", json={"reset": True}).status_code == 200
    assert "unseal nonce" not in run(server, "status").stdout
    r = server.http.post("/v1/sys/unseal", json={"key": shares[1], "nonce": nonce})
    assert "completed or reset" in r.json()["detail"], r.text

    for share in shares[:2]:
        assert run(server, "unseal", "--share-file", _share_file(tmp_path, share)).exit_code == 0
    assert server.http.get("/v1/sys/health").json()["sealed"] is False


def test_rekey_nonce_and_passphrase_warning(shamir_server: tuple[ServerProcess, list[str]],
                                            tmp_path: Path) -> None:
    server, shares = shamir_server
    if server.http.get("/v1/sys/health").json()["sealed"]:
        for share in shares[:2]:
            server.http.post("/v1/sys/unseal", json={"key": share})
    res = run(server, "rekey", "update", "--nonce", "n", "--share-file",
              _share_file(tmp_path, shares[0]))
    assert res.exit_code == 1 and "no rekey is in progress" in res.stderr, res.output
    started = run(server, "--format", "json", "rekey", "init", "--seal", "passphrase")
    assert started.exit_code == 0, started.output
    nonce = json.loads(started.stdout)["nonce"]
    res = run(server, "rekey", "update", "--nonce", "f" * 32, "--share-file",
              _share_file(tmp_path, shares[0]))
    assert res.exit_code == 1, res.output
    assert "does not match the rekey in progress" in res.stderr
    res = None
    for share in shares[:2]:
        res = run(server, "rekey", "update", "--nonce", nonce, "--share-file",
                  _share_file(tmp_path, share))
        assert res.exit_code == 0, res.output
    assert res is not None and "unseal passphrase" in res.stdout
    assert "Hand each share" not in res.stderr and "passphrase is shown only once" in res.stderr
    # Back to shamir for the other tests of the module (the passphrase is the material).
    passphrase = next(line.split(None, 2)[2] for line in res.stdout.splitlines()
                      if line.startswith("unseal passphrase"))
    st = server.post("/v1/sys/rekey/init", {"seal": "shamir", "secret_shares": 3,
                                             "secret_threshold": 2}).json()
    done = server.http.post("/v1/sys/rekey/update", json={"nonce": st["nonce"],
                                                          "passphrase": passphrase}).json()
    assert done["complete"] is True, done
    shares[:] = done["keys"]


def test_pkcs11_rekey_status_shows_no_fraction(cli: Cli) -> None:
    cli.reply({"started": True, "nonce": "abc", "seal_type": "pkcs11",
               "new_seal_type": "shamir", "progress": 0, "required": 0,
               "new_shares": 5, "new_threshold": 3})
    res = cli.run(["rekey", "status"])
    assert res.exit_code == 0, res.output
    assert "0/0" not in res.stdout
    assert "no material needed" in res.stdout and "--nonce" in res.stdout


def test_key_show_origin_versions_material_and_export_labels(live_server: ServerProcess,
                                                             tmp_path: Path) -> None:
    s = live_server
    name = "pol-" + secrets.token_hex(4)
    s.create_key(name, algorithm="AES_256_GCM", origin="external")
    shown = run(s, "key", "show", name)
    assert shown.exit_code == 0 and any(
        line.split() == ["origin", "external"] for line in shown.stdout.splitlines()), \
        shown.stdout
    # The import token from a file, then from a hidden prompt (stdin here).
    pub = tmp_path / "wrapping.pem"
    params = json.loads(run(s, "--format", "json", "key", "import-params", name,
                            "--public-key-out", str(pub)).stdout)
    wrapped = tmp_path / "wrapped.bin"
    wrapped.write_bytes(wrap(pub.read_text(), os.urandom(32), params["wrapping_algorithm"]))
    token_file = tmp_path / "token"
    token_file.write_text(params["import_token"] + "\n")
    res = run(s, "key", "import", name, "--import-token-file", str(token_file),
              "--material-file", str(wrapped), "--format", "raw")
    assert res.exit_code == 0, res.output
    params = json.loads(run(s, "--format", "json", "key", "import-params", name,
                            "--public-key-out", str(pub)).stdout)
    wrapped.write_bytes(wrap(pub.read_text(), os.urandom(32), params["wrapping_algorithm"]))
    res = run(s, "key", "import", name, "--material-file", str(wrapped), "--format", "raw",
              input=params["import_token"] + "\n")
    assert res.exit_code == 0, res.output
    assert params["import_token"] not in res.output
    both = run(s, "key", "import", name, "--import-token", "x", "--import-token-file",
               str(token_file), "--material-file", str(wrapped), "--format", "raw")
    assert both.exit_code == 2 and "not both" in both.output

    versions = run(s, "key", "versions", name)
    assert versions.exit_code == 0, versions.output
    header, *rows = versions.stdout.splitlines()
    assert header.split()[:3] == ["VERSION", "STATE", "MATERIAL"]
    assert [r.split()[2] for r in rows] == ["software", "software"]
    body = s.get(f"/v1/keys/{name}/versions").json()["versions"]
    assert [(v["in_hsm"], v["public_only"]) for v in body] == [(False, False)] * 2

    exportable = "polx-" + secrets.token_hex(4)
    s.create_key(exportable, algorithm="AES_256_GCM", exportable=True)
    wrapper = s.create_key("polw-" + secrets.token_hex(4), algorithm="AES_256_KWP")
    res = run(s, "key", "export", exportable, "--wrap-with", wrapper["id"], "--out",
              str(tmp_path / "out.bin"))
    assert res.exit_code == 0, res.output
    labels = {line.split("  ")[0].strip(): line for line in res.stdout.splitlines()}
    assert {"key id", "key version", "wrapping algorithm", "wrapping key fingerprint",
            "wrapping key", "wrapping key version", "out"} <= set(labels), res.stdout
    assert wrapper["id"] in labels["wrapping key"]
    assert labels["wrapping key version"].split()[-1] == "1"
    assert not any("_" in label for label in labels)


def test_a_closed_stdout_pipe_exits_quietly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)                          # as `| head -2` once it has its lines
    try:
        done = subprocess.run([*KEYKEEPER, "dev-certs", "--out", str(tmp_path / "pki")],
                              stdout=write_end, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == b"", done.stderr


def test_server_help_describes_dev_mode() -> None:
    res = CliRunner().invoke(app, ["server", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    assert "In-memory" not in text and "temporary data directory removed at exit" in text


def test_a_kmip_unique_identifier_given_as_a_key_is_explained(
        live_server: ServerProcess) -> None:
    uid = "k-" + secrets.token_hex(16) + "/1"
    shown = run(live_server, "key", "show", uid)
    assert shown.exit_code != 0
    assert "is a KMIP Unique Identifier (key id/version)" in shown.output
    assert f"give the key id '{uid[:-2]}'" in shown.output and "route" not in shown.output
    other = run(live_server, "key", "show", "k-abc/def")   # not a KMIP UID: not found
    assert other.exit_code != 0 and "KMIP Unique Identifier" not in other.output


def test_the_dev_banner_on_a_restart_prints_no_unusable_token_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """First start: ``export KEYKEEPER_TOKEN=<token>``; a restart on the same data
    directory cannot show the token again, and says so in a shell comment instead of an
    ``export`` line that cannot be pasted."""
    from keykeeper.config import Settings
    from keykeeper.config.startup import _dev_bootstrap
    from keykeeper.store.engine import make_engine, sqlite_url
    from keykeeper.store.migrate import upgrade

    settings = Settings(data_dir=tmp_path, database_url=sqlite_url(tmp_path),
                        audit_file=tmp_path / "audit.log")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    _dev_bootstrap(settings, None, "http://127.0.0.1:8200")
    first = capsys.readouterr().err
    exports = [line.strip() for line in first.splitlines() if "KEYKEEPER_TOKEN=" in line]
    assert len(exports) == 1 and exports[0].startswith("export KEYKEEPER_TOKEN=")
    assert "(" not in exports[0]
    _dev_bootstrap(settings, None, "http://127.0.0.1:8200")
    again = capsys.readouterr().err
    assert "export KEYKEEPER_TOKEN" not in again
    assert "# KEYKEEPER_TOKEN: the root token printed at the first start" in again
