"""The backup commands that need no server: ``custodian-keygen`` (never replaces a key
without --force; private key 0600, public key 0644) and ``verify`` (shows who can open the
archive: shares and custodians, each with its threshold)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner, Result

from keykeeper.backup import generate_custodian_key
from keykeeper.cli._state import State
from keykeeper.cli.main import app, hoist_global_options
from tests.backup.conftest import make_archive
from tests.integration.conftest import Node


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, hoist_global_options(list(args)), obj=State(),
                              env={"KEYKEEPER_ADDR": "http://127.0.0.1:9"})


def test_custodian_keygen_never_replaces_a_key_unasked(tmp_path: Path) -> None:
    private, public = tmp_path / "c.key", tmp_path / "c.pub"
    res = _cli("backup", "custodian-keygen", "--out", str(private), "--public-out",
               str(public), "--kind", "hybrid")
    assert res.exit_code == 0, res.output
    assert private.stat().st_mode & 0o777 == 0o600
    assert public.stat().st_mode & 0o777 == 0o644
    first = private.read_bytes()

    res = _cli("backup", "custodian-keygen", "--out", str(private), "--public-out",
               str(tmp_path / "other.pub"))
    assert res.exit_code != 0 and "add --force" in res.stderr
    assert private.read_bytes() == first and not (tmp_path / "other.pub").exists()

    res = _cli("backup", "custodian-keygen", "--out", str(private), "--public-out",
               str(public), "--force")
    assert res.exit_code == 0, res.output
    assert private.read_bytes() != first
    assert private.stat().st_mode & 0o777 == 0o600
    assert public.stat().st_mode & 0o777 == 0o644


def test_verify_shows_the_custody(node: Node, tmp_path: Path) -> None:
    publics = [generate_custodian_key("hybrid")[1] for _ in range(3)]
    archive = tmp_path / "a.backup"
    make_archive(node, archive, shares=5, threshold=3, custodian_keys=publics,
                 custodian_threshold=2)
    res = _cli("backup", "verify", str(archive))
    assert res.exit_code == 0, res.output
    assert re.search(r"shares\s+5 \(threshold 3\)", res.stdout), res.stdout
    assert re.search(r"custodians\s+3 \(threshold 2\)", res.stdout), res.stdout
