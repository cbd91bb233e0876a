"""``--usage-rotate-fraction nan`` and ``--rate-limit inf`` against a live server: one line,
exit 1, and the stored setting is not reset (msgspec would have sent NaN as null, and
null means "back to the default")."""

from __future__ import annotations

import secrets

import pytest
from typer.testing import CliRunner, Result

from keykeeper.cli._state import State
from keykeeper.cli.main import app
from keykeeper.client import Client
from keykeeper.errors import InvalidArgument
from tests.support.server import ServerProcess


def cli(server: ServerProcess, *args: str) -> Result:
    env = {"KEYKEEPER_ADDR": server.addr, "KEYKEEPER_TOKEN": server.root_token}
    return CliRunner().invoke(app, list(args), env=env, obj=State())


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity"])
def test_key_update_refuses_a_non_finite_fraction(live_server: ServerProcess,
                                                  value: str) -> None:
    s = live_server
    key = s.create_key(f"nanf-{secrets.token_hex(4)}", usage_limit=1000,
                       usage_rotate_fraction=0.5)["id"]
    res = cli(s, "key", "update", key, "--usage-rotate-fraction", value)
    assert res.exit_code == 1, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: invalid_argument: usage_rotate_fraction must be a finite number, "
        f"not {float(value)!r}"]
    assert s.get(f"/v1/keys/{key}").json()["usage_rotate_fraction"] == 0.5


def test_namespace_rate_limit_inf_is_refused(live_server: ServerProcess) -> None:
    s = live_server
    name = f"nanns{secrets.token_hex(3)}"
    assert cli(s, "namespace", "create", name, "--rate-limit", "5").exit_code == 0
    res = cli(s, "namespace", "update", name, "--rate-limit", "inf")
    assert res.exit_code == 1, res.stderr
    assert res.stderr.strip() == ("error: invalid_argument: rate_limit must be a finite "
                                  "number, not inf")
    with Client(s.addr, s.root_token) as kk:
        assert kk.get_namespace(name).rate_limit == 5
        with pytest.raises(InvalidArgument, match="rate_limit must be a finite number"):
            kk.update_namespace(name, rate_limit=float("nan"))
        assert kk.get_namespace(name).rate_limit == 5
