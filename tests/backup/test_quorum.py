"""The backup quorum policy (issue 7 §1: "No single person can open a backup alone unless
the policy says M = 1"): ``KEYKEEPER_BACKUP_MIN_QUORUM`` (default 2) is the fewest people
any archive may be opened by, checked in ``BackupCreate.plan`` for every way to open it
(the share threshold and the custodian threshold), for direct, scheduled, REST and CLI
backups alike. Refusals are ``failed_precondition`` naming the setting, before anything
is written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keykeeper.backup import generate_custodian_key, verify_archive
from keykeeper.config import Settings
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.backup_export import DEFAULT_MIN_QUORUM, check_quorum
from keykeeper.service.backup_schedule import BackupSchedule, ScheduledBackups
from keykeeper.service.key_args import CreateKey
from tests.backup.conftest import backups, make_archive
from tests.integration.conftest import Node

SETTING = "KEYKEEPER_BACKUP_MIN_QUORUM"


@pytest.fixture(scope="module")
def publics() -> list[bytes]:
    return [generate_custodian_key("hybrid")[1] for _ in range(3)]


def test_check_quorum_covers_every_way_to_open() -> None:
    check_quorum({"shares": {"count": 3, "threshold": 2}, "custodians": None}, 2)
    check_quorum({"shares": None, "custodians": {"count": 3, "threshold": 3}}, 3)
    check_quorum({"shares": {"count": 1, "threshold": 1}, "custodians": None}, 1)
    refused = [
        ({"shares": {"count": 3, "threshold": 1}, "custodians": None}, 2, "share threshold of 1"),
        ({"shares": None, "custodians": {"count": 2, "threshold": 1}}, 2,
         "custodian threshold of 1"),
        # both ways present: the weaker one decides
        ({"shares": {"count": 5, "threshold": 3}, "custodians": {"count": 3, "threshold": 2}},
         3, "custodian threshold of 2"),
        ({"shares": {"count": 3, "threshold": 2}, "custodians": {"count": 3, "threshold": 3}},
         3, "share threshold of 2"),
    ]
    for custody, quorum, what in refused:
        with pytest.raises(FailedPrecondition, match=SETTING) as err:
            check_quorum(custody, quorum)
        assert what in err.value.detail and err.value.code == "failed_precondition"


def test_default_quorum_refuses_one_person(node: Node, tmp_path: Path,
                                           publics: list[bytes]) -> None:
    ctx, create = node.ctx(), backups(node).create
    node.services.keys.create(ctx, CreateKey(name="q"))
    assert create.min_quorum == DEFAULT_MIN_QUORUM == 2
    # several shares with a threshold of 1 are refused by the Shamir split itself
    with pytest.raises(InvalidArgument, match="threshold of 1"):
        create.plan(ctx, shares=3, threshold=1)
    cases = {
        "a single share": dict(shares=1, threshold=1),
        "one custodian of two": dict(custodian_keys=publics[:2], custodian_threshold=1),
        "a single custodian": dict(custodian_keys=publics[:1], custodian_threshold=1),
        "shares fine, custodians not": dict(shares=3, threshold=2, custodian_keys=publics,
                                            custodian_threshold=1),
        "custodians fine, shares not": dict(shares=1, threshold=1, custodian_keys=publics,
                                            custodian_threshold=2),
    }
    for name, options in cases.items():
        with pytest.raises(FailedPrecondition, match=SETTING):
            create.plan(ctx, **options)  # type: ignore[arg-type]
            pytest.fail(f"accepted: {name}")
    # thresholds of 2 pass, and the archive opens with two of them
    shares = make_archive(node, tmp_path / "two.backup", shares=3, threshold=2,
                          custodian_keys=publics, custodian_threshold=2)
    assert verify_archive(lambda: (tmp_path / "two.backup").open("rb"),
                          shares=shares[:2]).opened


def test_quorum_of_three_and_of_one(node: Node, tmp_path: Path, publics: list[bytes]) -> None:
    ctx, create = node.ctx(), backups(node).create
    create.min_quorum = 3
    with pytest.raises(FailedPrecondition, match=rf"{SETTING}=3"):
        create.plan(ctx, shares=3)  # the default threshold (2) is below the policy
    with pytest.raises(FailedPrecondition, match=rf"{SETTING}=3"):
        create.plan(ctx, custodian_keys=publics)
    assert create.plan(ctx, shares=3, threshold=3).header["custody"]["shares"][
        "threshold"] == 3
    create.min_quorum = 1  # the policy says M = 1: one person may open an archive alone
    plan = create.plan(ctx, custodian_keys=publics[:1], custodian_threshold=1)
    assert plan.header["custody"]["custodians"]["threshold"] == 1
    plan = create.plan(ctx, shares=1, threshold=1)
    assert len(plan.shares) == 1
    # an implicit threshold of 1 is still refused: it must be asked for explicitly
    with pytest.raises(InvalidArgument, match="alone"):
        create.plan(ctx, custodian_keys=publics[:1])


def test_scheduled_backup_below_the_quorum_is_refused(node: Node, tmp_path: Path,
                                                      publics: list[bytes]) -> None:
    """A schedule whose threshold is below the policy writes nothing: the job raises
    (the scheduler records an error) and the directory holds no archive."""
    pem = tmp_path / "only.pub"
    pem.write_bytes(publics[0])
    directory = tmp_path / "scheduled"
    schedule = BackupSchedule.from_env({"KEYKEEPER_BACKUP_DIR": str(directory),
                                        "KEYKEEPER_BACKUP_CUSTODIANS": str(pem)})
    assert schedule is not None and schedule.threshold == 1
    node.services.keys.create(node.ctx(), CreateKey(name="k1"))  # an empty store is skipped
    with pytest.raises(FailedPrecondition, match=SETTING):
        ScheduledBackups(backups(node), schedule).run(datetime.now(UTC))
    assert not directory.exists() or list(directory.iterdir()) == []


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv(SETTING, raising=False)
    yield monkeypatch


def test_setting_parsed_and_checked(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().backup_min_quorum == 2
    clean_env.setenv(SETTING, "1")
    assert Settings.from_env().backup_min_quorum == 1
    clean_env.setenv(SETTING, " 5 ")
    assert Settings.from_env().backup_min_quorum == 5
    for bad in ("0", "-1", "two", "33", "1.5"):
        clean_env.setenv(SETTING, bad)
        with pytest.raises(InvalidArgument, match=SETTING):
            Settings.from_env()
