"""The new CLI flags and SDK arguments against a live server (the CLI runs in-process
through typer's runner; its SDK talks HTTP to the real server)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from keykeeper.cli.main import app
from keykeeper.client import Client
from keykeeper.errors import FailedPrecondition, InvalidArgument
from tests.support.server import ServerProcess

DAY = 86400


def run(server: ServerProcess, *args: str, code: int = 0) -> Any:
    env = {"KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": server.root_token}
    result = CliRunner().invoke(app, ["--format", "json", *args], env=env)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return json.loads(result.stdout) if code == 0 else result


def name() -> str:
    return "cl-" + secrets.token_hex(4)


def test_key_create_update_activate_trim_flags(live_server: ServerProcess) -> None:
    n = name()
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    key = run(live_server, "key", "create", n, "--activation-date", later,
              "--deactivation-date", (datetime.now(UTC) + timedelta(days=90)).isoformat(),
              "--usage-limit", "500", "--usage-rotate-fraction", "0.8",
              "--originator-usage-period", "60d", "--recipient-usage-period", "120d",
              "--rotation-period", "7d")
    assert key["state"] == "pre-active"
    assert (key["usage_limit"], key["rotation_threshold"]) == (500, 400)
    assert (key["originator_usage_period"], key["recipient_usage_period"]) == (
        60 * DAY, 120 * DAY)
    assert run(live_server, "key", "activate", n)["state"] == "active"
    key = run(live_server, "key", "update", n, "--usage-limit", "none",
              "--rotation-period", "none", "--originator-usage-period", "30d")
    assert key["usage_limit"] == 2 ** 32 and key["rotation_period"] is None
    assert key["originator_usage_period"] == 30 * DAY and key["usage_rotate_fraction"] == 0.8
    run(live_server, "key", "rotate", n)
    run(live_server, "key", "rotate", n)
    key = run(live_server, "key", "update", n, "--min-decryption-version", "2",
              "--min-encryption-version", "3")
    assert (key["min_decryption_version"], key["min_encryption_version"]) == (2, 3)
    key = run(live_server, "key", "trim", n, "--min-available-version", "2", "--yes")
    versions = run(live_server, "key", "versions", n)["versions"]
    assert [v["state"] for v in versions] == ["destroyed", "active", "active"]
    assert versions[1]["originator_usage_end"] is not None
    failed = run(live_server, "key", "trim", n, "--min-available-version", "3", "--yes",
                 code=1)
    assert "min_decryption_version" in failed.stderr and "\n" not in failed.stderr.strip()
    failed = run(live_server, "key", "update", n, "--usage-limit", "lots", code=2)
    assert "--usage-limit" in failed.stderr


def test_key_show_table_lists_the_lifecycle(live_server: ServerProcess) -> None:
    n = name()
    run(live_server, "key", "create", n, "--usage-limit", "10")
    env = {"KEYKEEPER_ADDR": live_server.addr, "KEYKEEPER_TOKEN": live_server.root_token}
    out = CliRunner().invoke(app, ["key", "show", n], env=env).stdout
    for row in ("usage limit", "rotation threshold", "originator usage period",
                "min decryption version", "activation date"):
        assert row in out
    assert "730d" in out and "0 (every version)" in out


def test_namespace_flags(live_server: ServerProcess) -> None:
    ns = "cns-" + secrets.token_hex(4)
    got = run(live_server, "namespace", "create", ns, "--rotation-period", "30d",
              "--originator-usage-period", "100d", "--recipient-usage-period", "200d")
    assert (got["rotation_period"], got["originator_usage_period"],
            got["recipient_usage_period"]) == (30 * DAY, 100 * DAY, 200 * DAY)
    got = run(live_server, "namespace", "update", ns, "--rotation-period", "none",
              "--recipient-usage-period", "300d")
    assert got["rotation_period"] is None and got["recipient_usage_period"] == 300 * DAY
    assert run(live_server, "namespace", "show", ns)["originator_usage_period"] == 100 * DAY


def test_sdk_keep_clear_activate_trim(live_server: ServerProcess) -> None:
    with Client(live_server.addr, live_server.root_token) as kk:
        n = name()
        key = kk.create_key(n, activation_date=datetime.now(UTC) + timedelta(days=1),
                            usage_limit=50, originator_usage_period=timedelta(days=10))
        assert key.state == "pre-active" and key.activation_date is not None
        assert key.originator_usage_period == 10 * DAY
        key = kk.update_key(n, description="kept")
        assert key.usage_limit == 50  # left out: kept
        key = kk.update_key(n, usage_limit=None, rotation_period="1d")
        assert key.usage_limit == 2 ** 32 and key.rotation_period == DAY
        with pytest.raises(InvalidArgument, match="usage_rotate_fraction"):
            kk.update_key(n, usage_rotate_fraction=2.0)
        assert kk.activate_key(n).state == "active"
        with pytest.raises(FailedPrecondition):
            kk.activate_key(n)
        kk.rotate_key(n)
        kk.update_key(n, min_decryption_version=2)
        trimmed = kk.trim_key(n, 2)
        assert trimmed.primary_version == 2
        assert [v.state for v in kk.list_versions(n)] == ["destroyed", "active"]
        ns = "sns-" + secrets.token_hex(4)
        assert kk.create_namespace(ns, rotation_period="60d").rotation_period == 60 * DAY
        assert kk.update_namespace(ns, rotation_period=None).rotation_period is None
