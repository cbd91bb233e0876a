"""Backups over REST, the SDK and the CLI against real servers (subprocesses): back up one
server, restore into a fresh one on the other backend, golden ciphertexts decrypt; bad
input is a 4xx problem+json and writes nothing; a backup broken off part-way leaves no
archive in place and nothing that verifies."""

from __future__ import annotations

import io
import json
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from keykeeper.backup import ArchiveInvalid, verify_archive
from keykeeper.cli._state import State
from keykeeper.cli.main import app, hoist_global_options
from keykeeper.client import Client
from keykeeper.errors import FailedPrecondition, Unavailable
from keykeeper.store.engine import make_engine
from keykeeper.store.schema import key_versions
from tests.conftest import PgSchema, pg_available
from tests.support.principals import add_principal
from tests.support.server import ServerProcess, b64, unb64

Start = Callable[..., ServerProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """``start(backend, env=None)``: a fresh, initialized, unsealed server."""
    made: list[tuple[ServerProcess, PgSchema | None]] = []

    def run(backend: str, env: dict[str, str] | None = None) -> ServerProcess:
        schema = None
        data_dir = tmp_path / f"server-{len(made)}"
        data_dir.mkdir()
        if backend == "postgresql":
            if (reason := pg_available()):
                pytest.skip(reason)
            schema = PgSchema()
            url = schema.url
        else:
            url = f"sqlite:///{data_dir / 'keykeeper.db'}"
        server = ServerProcess(data_dir=data_dir, database_url=url, backend=backend, env=env)
        made.append((server, schema))
        server.start()
        server.init_and_unseal()
        return server

    yield run
    for server, schema in made:
        server.stop()
        if schema is not None:
            schema.drop()


def cli(server: ServerProcess, *args: str, token: str | None = None,
        input: str | None = None) -> Result:
    env = {"KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": token or server.root_token}
    return CliRunner().invoke(app, hoist_global_options(list(args)), env=env, obj=State(),
                              input=input)


def populate(server: ServerProcess) -> dict[str, str]:
    """A namespace, keys with two versions, golden ciphertexts (ciphertext -> plaintext)."""
    r = server.post("/v1/namespaces", {"name": "payments"})
    assert r.status_code == 201, r.text
    server.create_key("orders", labels={"team": "a"})
    server.create_key("cards", namespace="payments")
    golden = {}
    for ref in ("orders", "payments:cards"):
        for round_ in range(2):
            text = f"{ref} golden {round_}".encode()
            ct = server.post(f"/v1/keys/{ref}/encrypt", {"plaintext": b64(text)}).json()
            golden[ct["ciphertext"]] = (ref, text)
            if round_ == 0:
                assert server.post(f"/v1/keys/{ref}/rotate").status_code == 200
    return {ct: json.dumps([ref, text.decode()]) for ct, (ref, text) in golden.items()}


def check_golden(server: ServerProcess, golden: dict[str, str], token: str) -> None:
    for ct, packed in golden.items():
        ref, text = json.loads(packed)
        r = server.post(f"/v1/keys/{ref}/decrypt", {"ciphertext": ct}, token=token)
        assert r.status_code == 200, r.text
        assert unb64(r.json()["plaintext"]) == text.encode()


def test_sdk_sqlite_to_postgresql(start: Start, tmp_path: Path) -> None:
    source = start("sqlite")
    golden = populate(source)
    archive = tmp_path / "kk.backup"
    with Client(source.addr, source.root_token) as kk:
        signing = kk.backup_signing_key()
        made = kk.backup_create(archive, shares=3, threshold=2)
    assert made.signer == signing.fingerprint and len(made.shares) == 3
    assert made.counts["keys"] == 2 and made.counts["key_versions"] == 4
    assert not list(tmp_path.glob(".*.part"))
    report = verify_archive(lambda: archive.open("rb"), signer=signing.fingerprint,
                            shares=made.shares[1:])
    assert report.opened and report.materials == 4

    target = start("postgresql")
    with Client(target.addr, target.root_token) as kk:
        # another instance's archive: refused until its signer is pinned, shares or not
        with pytest.raises(FailedPrecondition, match="pin its signer"):
            kk.backup_restore(archive, shares=[made.shares[2], made.shares[0]])
        restored = kk.backup_restore(archive, shares=[made.shares[2], made.shares[0]],
                                     signer=signing.public_key)
    assert restored.counts["keys"] == 2 and not restored.forced
    assert restored.identity_restored and restored.added["keys"] == 2
    check_golden(target, golden, target.root_token)
    # principals and token hashes are archived, but not the source's init (root) token:
    # it is that instance's break-glass, and no archive gives root powers elsewhere
    r = target.post("/v1/keys/orders/encrypt", {"plaintext": b64(b"x")},
                    token=source.root_token)
    assert r.status_code == 401, r.text


def test_cli_postgresql_to_sqlite_with_custodian_keys(start: Start, tmp_path: Path) -> None:
    source = start("postgresql")
    golden = populate(source)
    keys = []
    for i in range(3):
        res = cli(source, "backup", "custodian-keygen", "--out", str(tmp_path / f"c{i}.key"),
                  "--public-out", str(tmp_path / f"c{i}.pub"))
        assert res.exit_code == 0, res.output
        keys.append((tmp_path / f"c{i}.key", tmp_path / f"c{i}.pub"))
    assert oct((tmp_path / "c0.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "c0.pub").stat().st_mode & 0o777) == "0o644"
    archive = tmp_path / "kk.backup"
    res = cli(source, "backup", "create", "--out", str(archive),
              *(a for _, pub in keys for a in ("--custodian-key", str(pub))),
              "--custodian-threshold", "2", "--format", "json")
    assert res.exit_code == 0, res.output
    made = json.loads(res.stdout)
    assert made["shares"] == [] and made["custodians"] == 3
    signer = tmp_path / "signer.pem"
    res = cli(source, "backup", "signing-key", "--out", str(signer))
    assert res.exit_code == 0 and made["signer"] in res.stdout

    res = cli(source, "backup", "verify", str(archive), "--signer", str(signer))
    assert res.exit_code == 0 and "no (give shares" in res.stdout
    assert re.search(r"custodians\s+3 \(threshold 2\)", res.stdout), res.stdout
    res = cli(source, "backup", "verify", str(archive), "--signer", made["signer"],
              "--custodian-key", str(keys[0][0]), "--custodian-key", str(keys[2][0]))
    assert res.exit_code == 0 and "every wrapped material opens" in res.stdout
    res = cli(source, "backup", "verify", str(archive), "--custodian-key", str(keys[1][0]))
    assert res.exit_code == 1
    assert res.stderr.strip() == ("error: invalid_argument: too few custodians: 1 given, "
                                  "2 needed")

    target = start("sqlite")
    args = ("backup", "restore", str(archive), "--custodian-key", str(keys[1][0]),
            "--custodian-key", str(keys[2][0]))
    res = cli(target, *args)  # another instance's archive: the signer must be pinned
    assert res.exit_code == 1 and "pin its signer" in res.stderr
    assert target.get("/v1/keys").json()["keys"] == []
    res = cli(target, *args, "--signer", str(signer), "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["counts"]["keys"] == 2
    check_golden(target, golden, target.root_token)


def test_cli_shares_prompt_and_forced_restore_approval(start: Start, tmp_path: Path) -> None:
    """Shares on stdin; --force files the approval (exit 4, its id), and --approval-id
    completes it once approved."""
    server = start("sqlite")
    golden = populate(server)
    archive = tmp_path / "kk.backup"
    res = cli(server, "backup", "create", "--out", str(tmp_path / "table.backup"),
              "--shares", "3")
    assert res.exit_code == 0, res.output
    assert re.search(r"shares\s+3 \(threshold 2", res.stdout), res.stdout
    res = cli(server, "backup", "create", "--out", str(archive), "--shares", "3",
              "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["threshold"] == 2
    shares = json.loads(res.stdout)["shares"]
    tag = secrets.token_hex(3)
    tokens = {n: add_principal(server.database_url, f"{n}-{tag}", ("key-custodian",))
              for n in ("c1", "c2", "c3")}
    res = cli(server, "backup", "restore", str(archive), input="\n".join(shares[:2]) + "\n",
              token=tokens["c1"])
    assert res.exit_code == 1 and "not empty" in res.stderr
    res = cli(server, "backup", "restore", str(archive), "--force", "--format", "json",
              input="\n".join(shares[:2]) + "\n", token=tokens["c1"])
    assert res.exit_code == 4, res.output
    approval_id = json.loads(res.stdout)["approval_id"]
    for who in ("c2", "c3"):
        r = server.post(f"/v1/approvals/{approval_id}/approve", {}, token=tokens[who])
        assert r.status_code == 200, r.text
    share_file = tmp_path / "shares.txt"
    share_file.write_text("\n".join(shares[1:]) + "\n")
    res = cli(server, "backup", "restore", str(archive), "--force", "--approval-id",
              approval_id, "--share-file", str(share_file), token=tokens["c1"])
    assert res.exit_code == 0, res.output
    assert "forced" in res.stdout and "key data only" in res.stdout
    assert re.search(r"kept keys\s+2", res.stdout), res.stdout
    check_golden(server, golden, server.root_token)


def test_bad_input_over_rest_writes_nothing(start: Start, tmp_path: Path) -> None:
    source = start("sqlite")
    populate(source)
    archive = tmp_path / "kk.backup"
    with Client(source.addr, source.root_token) as kk:
        made = kk.backup_create(archive, shares=3, threshold=2)
        other = kk.backup_create(io.BytesIO(), shares=3, threshold=2)
    data = archive.read_bytes()
    cap = len(data) + 1000
    target = start("sqlite", env={"KEYKEEPER_RESTORE_MAX_BYTES": str(cap)})

    def post(body: bytes) -> httpx.Response:
        return target.request("POST", "/v1/sys/restore", content=body,
                              headers={"content-type": "application/x-ndjson"})

    def options(**fields: Any) -> bytes:
        fields.setdefault("signer", made.signer)  # another instance's archive: pinned
        return json.dumps(fields).encode() + b"\n"

    good = options(shares=made.shares[:2])
    cases = {
        "not an archive": (good + b"hello, world\n", 400, "not valid JSON|no header"),
        "options not JSON": (b"{shares: 1}\n" + data, 400, "not valid JSON"),
        "unknown option": (options(sharez=[]) + data, 400, "invalid restore options"),
        "truncated": (good + data[: len(data) // 2], 400, "truncated|not valid JSON"),
        "cut in the trailer": (good + data[:-7], 400, "truncated"),
        "wrong share": (options(shares=[made.shares[0], other.shares[1]]) + data, 400,
                        "belongs to backup"),
        "too few shares": (options(shares=made.shares[:1]) + data, 400, "too few shares"),
        "no shares": (options() + data, 400, "needs the shares"),
        "bad backup_key": (options(backup_key="!!") + data, 400, "base64"),
        "oversize": (good + b"x" * (cap + 1), 413, "KEYKEEPER_RESTORE_MAX_BYTES"),
    }
    for name, (body, status, detail) in cases.items():
        r = post(body)
        assert r.status_code == status, (name, r.text)
        assert r.headers["content-type"] == "application/problem+json", name
        problem = r.json()
        assert problem["status"] == status and problem["code"] != "internal", name
        assert re.search(detail, problem["detail"]), (name, problem["detail"])
    assert target.get("/v1/keys").json()["keys"] == []
    assert [n["name"] for n in target.get("/v1/namespaces").json()["namespaces"]] == [
        "default"]
    # and the good archive still restores afterwards
    r = post(good + data)
    assert r.status_code == 200, r.text
    assert r.json()["counts"]["keys"] == 2

    # backup options are checked before the first byte: problem+json, no archive
    r = source.post("/v1/sys/backup", {"shares": 1})
    assert r.status_code == 400 and r.json()["code"] == "invalid_argument"
    r = source.post("/v1/sys/backup", {"shares": 2, "keys": ["no-such-key"]})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_backup_broken_off_midway_is_never_kept(start: Start, tmp_path: Path) -> None:
    """A stored material that cannot be unwrapped (a corrupted row) stops the backup after
    many records were sent: the CLI exits 1 with one line and leaves nothing at --out;
    the SDK raises, and the bytes it received do not verify."""
    server = start("sqlite")
    for i in range(120):
        server.create_key(f"k{i:03d}", description="x" * 300, labels={"n": str(i)})
    engine = make_engine(server.database_url)
    try:
        with engine.begin() as conn:
            last = conn.execute(select(key_versions.c.key_id)
                                .order_by(key_versions.c.key_id.desc())).first()
            assert last is not None
            conn.execute(update(key_versions).where(key_versions.c.key_id == last.key_id)
                         .values(wrapped_material=secrets.token_bytes(60)))
    finally:
        engine.dispose()
    out = tmp_path / "out" / "kk.backup"
    out.parent.mkdir()
    res = cli(server, "backup", "create", "--out", str(out), "--shares", "2")
    assert res.exit_code == 1, res.output
    assert res.stderr.strip().startswith("error: unavailable: the server broke the backup off")
    assert len(res.stderr.strip().splitlines()) == 1
    assert list(out.parent.iterdir()) == []

    partial = io.BytesIO()
    with Client(server.addr, server.root_token) as kk, pytest.raises(Unavailable):
        kk.backup_create(partial, shares=2)
    received = partial.getvalue()
    assert received.startswith(b'{"backup_id"') and len(received) >= 64 * 1024
    with pytest.raises(ArchiveInvalid, match="truncated"):
        verify_archive(lambda: io.BytesIO(received))
    # the server is fine afterwards
    assert server.get("/v1/sys/health").json()["sealed"] is False


def test_signing_key_needs_backup_read(start: Start) -> None:
    server = start("sqlite")
    app_token = add_principal(server.database_url, "app-" + secrets.token_hex(3),
                              ("application",))
    auditor = add_principal(server.database_url, "aud-" + secrets.token_hex(3), ("auditor",))
    r = server.get("/v1/sys/backup/signing-key", token=app_token)
    assert r.status_code == 403 and "backup.read" in r.json()["detail"]
    r = server.get("/v1/sys/backup/signing-key", token=auditor)
    assert r.status_code == 200 and r.json()["fingerprint"].startswith("sha256:")
    r = server.post("/v1/sys/backup", {"shares": 3}, token=auditor)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = server.request("POST", "/v1/sys/restore", content=b"{}\n" + b"x" * 100_000,
                       token=auditor)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
