"""Names, key references, durations, and the state table."""

from __future__ import annotations

import pytest

from keykeeper.domain.durations import parse_duration
from keykeeper.domain.names import KeyRef, parse_key_ref, validate_name
from keykeeper.domain.states import KeyState, Use, VersionState, check_key_use, check_transition
from keykeeper.errors import FailedPrecondition, InvalidArgument


def test_key_references() -> None:
    kid = "k-" + "ab" * 16
    assert parse_key_ref(kid) == KeyRef(key_id=kid)
    assert parse_key_ref("pki:root") == KeyRef(namespace="pki", name="root")
    assert parse_key_ref("orders") == KeyRef(namespace="default", name="orders")
    for bad in ("", "a b", "a:b:c", ":x", "x:", "é", "a/b", "x" * 129):
        with pytest.raises(InvalidArgument):
            parse_key_ref(bad)
    assert validate_name("A.b_c-9") == "A.b_c-9"


@pytest.mark.parametrize("value,seconds", [(3600, 3600), ("90d", 7776000), ("12h", 43200),
                                           ("30m", 1800), ("45s", 45), ("2w", 1209600),
                                           ("7", 7)])
def test_durations(value: int | str, seconds: int) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "d", "1y", "-5d", "1.5h", 0, -1, True, "10 d"])
def test_bad_durations(value: int | str) -> None:
    with pytest.raises(InvalidArgument):
        parse_duration(value)


def test_use_table() -> None:
    check_key_use(KeyState.ACTIVE, VersionState.ACTIVE, Use.PROTECT, version=1)
    check_key_use(KeyState.COMPROMISED, VersionState.COMPROMISED, Use.PROCESS, version=1)
    check_key_use(KeyState.DEACTIVATED, VersionState.ACTIVE, Use.PROCESS, version=1)
    refused = [
        (KeyState.SUSPENDED, VersionState.ACTIVE, Use.PROCESS),
        (KeyState.COMPROMISED, VersionState.COMPROMISED, Use.PROTECT),
        (KeyState.PENDING_DESTRUCTION, VersionState.ACTIVE, Use.PROCESS),
        (KeyState.PRE_ACTIVE, VersionState.ACTIVE, Use.PROTECT),
        (KeyState.ACTIVE, VersionState.DESTROYED, Use.PROCESS),
        (KeyState.DESTROYED, VersionState.DESTROYED, Use.PROCESS),
    ]
    for key_state, version_state, use in refused:
        with pytest.raises(FailedPrecondition):
            check_key_use(key_state, version_state, use, version=1)


def test_transitions() -> None:
    check_transition("disable", KeyState.ACTIVE)
    check_transition("cancel-destruction", KeyState.PENDING_DESTRUCTION)
    for action, state in (("enable", KeyState.COMPROMISED), ("rotate", KeyState.SUSPENDED),
                          ("disable", KeyState.DESTROYED), ("compromise", KeyState.DESTROYED),
                          ("schedule-destruction", KeyState.PENDING_DESTRUCTION),
                          ("update", KeyState.DESTROYED)):
        with pytest.raises(FailedPrecondition):
            check_transition(action, state)
