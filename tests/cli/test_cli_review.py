"""Review of the seal commands (issue 6 §1): unseal material is read the way ``init`` reads
it, so a passphrase set from a file unseals from the same file."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli

HEALTH = {"initialized": True, "sealed": False, "version": "1", "seal_type": "passphrase"}
PASSPHRASE = "  spaced out passphrase  "


def test_a_passphrase_keeps_its_spaces_from_init_to_unseal_and_rekey(cli: Cli,
                                                                      tmp_path: Path) -> None:
    pp = tmp_path / "pp"
    pp.write_text(PASSPHRASE + "\r\n")
    cli.reply({"root_token": "s.root", "unseal_passphrase": PASSPHRASE})
    assert cli.run(["init", "--passphrase-file", str(pp)]).exit_code == 0
    assert cli.last_json() == {"passphrase": PASSPHRASE}

    cli.reply(HEALTH)  # the CLI asks the seal type first, whatever the options
    cli.reply(HEALTH)
    res = cli.run(["unseal", "--passphrase-file", str(pp)])
    assert res.exit_code == 0, res.output
    assert cli.last_json() == {"passphrase": PASSPHRASE}

    cli.reply(HEALTH)  # piped: the CLI asks the seal type first
    cli.reply(HEALTH)
    res = cli.run(["unseal"], input=PASSPHRASE + "\n")
    assert res.exit_code == 0, res.output
    assert cli.last_json() == {"passphrase": PASSPHRASE}

    cli.reply(HEALTH)
    cli.reply({"complete": False, "progress": 0, "required": 1})
    res = cli.run(["rekey", "update", "--nonce", "n", "--passphrase-file", str(pp)])
    assert res.exit_code == 0, res.output
    assert cli.last_json() == {"nonce": "n", "passphrase": PASSPHRASE}

    cli.reply({"started": True, "nonce": "n", "seal_type": "passphrase",
               "new_seal_type": "passphrase", "progress": 0, "required": 1})
    res = cli.run(["rekey", "init", "--new-passphrase-file", str(pp)])
    assert res.exit_code == 0, res.output
    assert cli.last_json()["passphrase"] == PASSPHRASE


def test_a_share_file_still_tolerates_surrounding_whitespace(cli: Cli, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.write_text("c2hhcmU=\n")
    cli.reply({**HEALTH, "sealed": True, "seal_type": "shamir", "progress": 1,
               "threshold": 3})  # asked first
    cli.reply({**HEALTH, "sealed": True, "seal_type": "shamir", "progress": 1,
               "threshold": 3})
    res = cli.run(["unseal", "--share-file", str(share)])
    assert res.exit_code == 0, res.output
    assert cli.last_json() == {"key": "c2hhcmU="}
