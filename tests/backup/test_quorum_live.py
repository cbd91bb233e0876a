"""The backup quorum policy on real servers: ``POST /v1/sys/backup`` and ``keykeeper
backup create`` are refused below ``KEYKEEPER_BACKUP_MIN_QUORUM`` with a problem+json /
one line naming the setting, before any archive byte; a server set to 1 allows a single
custodian; a scheduled backup below the policy stops the server from starting."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keykeeper.backup import generate_custodian_key
from keykeeper.cli._state import State
from keykeeper.cli.main import app, hoist_global_options
from tests.support.server import ServerProcess

SETTING = "KEYKEEPER_BACKUP_MIN_QUORUM"
Start = Callable[..., ServerProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    made: list[ServerProcess] = []

    def run(env: dict[str, str] | None = None, *, init: bool = True) -> ServerProcess:
        data_dir = tmp_path / f"server-{len(made)}-{secrets.token_hex(2)}"
        data_dir.mkdir()
        server = ServerProcess(data_dir=data_dir,
                               database_url=f"sqlite:///{data_dir / 'keykeeper.db'}", env=env)
        made.append(server)
        server.start()
        if init:
            server.init_and_unseal()
        return server

    yield run
    for server in made:
        server.stop()


def _cli(server: ServerProcess, *args: str) -> tuple[int, str, str]:
    env = {"KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": server.root_token}
    res = CliRunner().invoke(app, hoist_global_options(list(args)), env=env, obj=State())
    return res.exit_code, res.stdout, res.stderr


def test_rest_and_cli_refuse_below_the_default_quorum(start: Start, tmp_path: Path) -> None:
    server = start()
    server.create_key("q")
    _, public = generate_custodian_key("hybrid")
    pub = tmp_path / "c.pub"
    pub.write_bytes(public)
    for body in ({"shares": 1, "threshold": 1},
                 {"custodian_keys": [public.decode()], "custodian_threshold": 1}):
        r = server.post("/v1/sys/backup", body)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "failed_precondition" and SETTING in r.json()["detail"]
    out = tmp_path / "kk.backup"
    code, stdout, stderr = _cli(server, "backup", "create", "--out", str(out),
                                "--custodian-key", str(pub), "--custodian-threshold", "1")
    assert code == 1, stdout + stderr
    assert len(stderr.strip().splitlines()) == 1
    assert stderr.startswith("error: failed_precondition: ") and SETTING in stderr
    assert list(tmp_path.glob("*.backup")) == [] and list(tmp_path.glob(".*.part")) == []
    # the quorum of two works
    code, stdout, stderr = _cli(server, "backup", "create", "--out", str(out),
                                "--shares", "3", "--threshold", "2")
    assert code == 0, stderr
    assert out.stat().st_size > 0


def test_policy_of_one_allows_a_single_custodian(start: Start, tmp_path: Path) -> None:
    server = start({SETTING: "1"})
    server.create_key("q")
    _, public = generate_custodian_key("hybrid")
    pub = tmp_path / "c.pub"
    pub.write_bytes(public)
    out = tmp_path / "one.backup"
    code, stdout, stderr = _cli(server, "backup", "create", "--out", str(out),
                                "--custodian-key", str(pub), "--custodian-threshold", "1",
                                "--format", "json")
    assert code == 0, stderr
    made = json.loads(stdout)
    assert made["custodian_threshold"] == 1 and made["custodians"] == 1
    assert out.stat().st_size > 0


def test_schedule_below_the_quorum_stops_the_server(start: Start, tmp_path: Path) -> None:
    _, public = generate_custodian_key("hybrid")
    pub = tmp_path / "c.pub"
    pub.write_bytes(public)
    env = {"KEYKEEPER_BACKUP_DIR": str(tmp_path / "scheduled"),
           "KEYKEEPER_BACKUP_CUSTODIANS": str(pub)}  # one file: threshold 1 by default
    with pytest.raises(RuntimeError, match=f"KEYKEEPER_BACKUP_THRESHOLD.*{SETTING}"):
        start(env, init=False)
    server = start({**env, SETTING: "1"}, init=False)  # the policy allows it
    assert server.http.get("/v1/sys/health").status_code == 200
