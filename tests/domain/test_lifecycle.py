"""domain/lifecycle.py: crypto-periods, activation and deactivation dates, minimum
versions, compromise and usage limits, each at the exact instant it takes effect."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from keykeeper.crypto.registry import Purpose
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.lifecycle import (
    GCM_RANDOM_NONCE_LIMIT,
    YEAR,
    Periods,
    check_use,
    default_periods,
    effective_key_state,
    originator_end,
    periods_for,
    recipient_end,
    rotation_due,
    rotation_threshold,
    usage_limit,
    validate_periods,
    version_start,
)
from keykeeper.domain.states import KeyState, Use, VersionState
from keykeeper.errors import FailedPrecondition, InvalidArgument

T0 = datetime(2026, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
DAY = 86_400
P = Periods(originator=30 * DAY, recipient=90 * DAY)


def version(n: int, created: datetime = T0, state: VersionState = VersionState.ACTIVE,
            ) -> KeyVersion:
    return KeyVersion(key_id="k-" + "0" * 32, version=n, state=state, created_at=created)


def key(*versions: KeyVersion, state: KeyState = KeyState.ACTIVE, algorithm: str = "AES_256_GCM",
        purpose: Purpose = Purpose.ENCRYPT, **kw: object) -> Key:
    vs = versions or (version(1),)
    return Key(id="k-" + "0" * 32, namespace="default", name="k", purpose=purpose,
               algorithm=algorithm, state=state, primary_version=vs[-1].version,
               created_at=T0, updated_at=T0, versions=vs, **kw)  # type: ignore[arg-type]


def refused(k: Key, n: int, use: Use, now: datetime, periods: Periods = P,
            allow: bool = False) -> str:
    v = k.version(n)
    assert v is not None
    with pytest.raises(FailedPrecondition) as e:
        check_use(k, v, use, now, periods, allow_compromised=allow)
    return e.value.detail


def allowed(k: Key, n: int, use: Use, now: datetime, periods: Periods = P,
            allow: bool = False) -> None:
    v = k.version(n)
    assert v is not None
    check_use(k, v, use, now, periods, allow_compromised=allow)


# -- crypto-periods (SP 800-57 Part 1 Table 1) ------------------------------------------------
def test_default_periods_by_key_class() -> None:
    assert default_periods(Purpose.ENCRYPT, False) == Periods(2 * YEAR, 5 * YEAR)
    assert default_periods(Purpose.MAC, False) == Periods(2 * YEAR, 5 * YEAR)
    assert default_periods(Purpose.SIGN, True) == Periods(3 * YEAR, 6 * YEAR)
    assert default_periods(Purpose.ENCRYPT, True) == Periods(2 * YEAR, 2 * YEAR)
    assert default_periods(Purpose.KEM, True) == Periods(2 * YEAR, 2 * YEAR)


def test_periods_key_overrides_namespace_overrides_default() -> None:
    k = key()
    assert periods_for(k) == Periods(2 * YEAR, 5 * YEAR)
    assert periods_for(k, 10 * DAY, 20 * DAY) == Periods(10 * DAY, 20 * DAY)
    own = replace(k, originator_usage_period=5 * DAY)
    assert periods_for(own, 10 * DAY, 20 * DAY) == Periods(5 * DAY, 20 * DAY)
    # The recipient period is never shorter than the originator period.
    assert periods_for(replace(k, originator_usage_period=3 * YEAR)) == Periods(3 * YEAR,
                                                                               5 * YEAR)
    assert periods_for(k, 6 * YEAR, None) == Periods(6 * YEAR, 6 * YEAR)


def test_validate_periods() -> None:
    validate_periods(3600, 3600)
    validate_periods(None, None)
    for o, r in ((3599, None), (None, 0), (7200, 3600)):
        with pytest.raises(InvalidArgument):
            validate_periods(o, r)


def test_originator_period_ends_protect_at_its_instant() -> None:
    k = key()
    end = T0 + timedelta(days=30)
    assert originator_end(k, k.versions[0], P) == end
    allowed(k, 1, Use.PROTECT, end - US)
    assert "originator usage period" in refused(k, 1, Use.PROTECT, end)
    allowed(k, 1, Use.PROCESS, end)  # still processes


def test_recipient_period_ends_process_at_its_instant() -> None:
    k = key()
    end = T0 + timedelta(days=90)
    assert recipient_end(k, k.versions[0], P) == end
    allowed(k, 1, Use.PROCESS, end - US)
    assert "recipient usage period" in refused(k, 1, Use.PROCESS, end)
    assert "originator usage period" in refused(k, 1, Use.PROTECT, end)


def test_periods_count_from_each_versions_creation() -> None:
    k = key(version(1), version(2, T0 + timedelta(days=60)))
    now = T0 + timedelta(days=89)
    allowed(k, 2, Use.PROTECT, now)          # v2: 29 days old
    allowed(k, 1, Use.PROCESS, now)          # v1: 89 days old
    assert "recipient" in refused(k, 1, Use.PROCESS, now + timedelta(days=1))


# -- activation and deactivation dates (SP 800-57 §7, KMIP 2.1 §4) ---------------------------
def test_pre_active_key_refuses_everything_until_its_activation_date() -> None:
    start = T0 + timedelta(days=10)
    k = key(state=KeyState.PRE_ACTIVE, activation_date=start)
    assert effective_key_state(k, start - US) == KeyState.PRE_ACTIVE
    assert "pre-active until 2026-01-11T00:00:00Z" in refused(k, 1, Use.PROTECT, start - US)
    assert "pre-active" in refused(k, 1, Use.PROCESS, start - US)
    assert effective_key_state(k, start) == KeyState.ACTIVE
    allowed(k, 1, Use.PROTECT, start)
    allowed(k, 1, Use.PROCESS, start)
    no_date = key(state=KeyState.PRE_ACTIVE)
    assert "pre-active" in refused(no_date, 1, Use.PROCESS, T0 + timedelta(days=999))


def test_crypto_period_starts_at_a_later_activation_date() -> None:
    start = T0 + timedelta(days=10)
    k = key(state=KeyState.PRE_ACTIVE, activation_date=start)
    assert version_start(k, k.versions[0]) == start
    allowed(k, 1, Use.PROTECT, start + timedelta(days=30) - US)
    assert "originator" in refused(k, 1, Use.PROTECT, start + timedelta(days=30))
    earlier = key(activation_date=T0 - timedelta(days=5))
    assert version_start(earlier, earlier.versions[0]) == T0


def test_deactivation_date_stops_protect_at_its_instant() -> None:
    end = T0 + timedelta(days=5)
    k = key(deactivation_date=end)
    allowed(k, 1, Use.PROTECT, end - US)
    assert effective_key_state(k, end) == KeyState.DEACTIVATED
    assert "deactivated" in refused(k, 1, Use.PROTECT, end)
    allowed(k, 1, Use.PROCESS, end)
    both = key(state=KeyState.PRE_ACTIVE, activation_date=T0 + timedelta(days=1),
               deactivation_date=T0 + timedelta(days=2))
    assert effective_key_state(both, T0) == KeyState.PRE_ACTIVE
    assert effective_key_state(both, T0 + timedelta(days=1)) == KeyState.ACTIVE
    assert effective_key_state(both, T0 + timedelta(days=2)) == KeyState.DEACTIVATED


def test_states_still_decide() -> None:
    now = T0 + timedelta(days=1)
    assert "suspended" in refused(key(state=KeyState.SUSPENDED), 1, Use.PROCESS, now)
    assert "destroyed" in refused(key(state=KeyState.DESTROYED), 1, Use.PROCESS, now)
    k = key(version(1, state=VersionState.DEACTIVATED), version(2))
    assert "version 1 is deactivated" in refused(replace(k, min_encryption_version=1), 1,
                                                Use.PROTECT, now)
    allowed(k, 1, Use.PROCESS, now)


# -- minimum versions (Vault transit) ---------------------------------------------------------
def test_min_encryption_version_zero_means_primary_only() -> None:
    k = key(version(1), version(2), version(3))
    now = T0 + timedelta(days=1)
    allowed(k, 3, Use.PROTECT, now)
    assert "only the primary version" in refused(k, 2, Use.PROTECT, now)
    floor2 = replace(k, min_encryption_version=2)
    allowed(floor2, 2, Use.PROTECT, now)
    assert "below the key's min_encryption_version (2)" in refused(floor2, 1, Use.PROTECT, now)


def test_min_decryption_version() -> None:
    k = key(version(1), version(2), version(3))
    now = T0 + timedelta(days=1)
    allowed(k, 1, Use.PROCESS, now)  # 0: every version
    floor = replace(k, min_decryption_version=2)
    assert "min_decryption_version (2)" in refused(floor, 1, Use.PROCESS, now)
    allowed(floor, 2, Use.PROCESS, now)


# -- compromise ------------------------------------------------------------------------------
def test_compromised_version_processes_only_with_the_flag() -> None:
    k = key(version(1, state=VersionState.COMPROMISED), version(2))
    now = T0 + timedelta(days=1)
    detail = refused(k, 1, Use.PROCESS, now)
    assert "key version 1 is compromised" in detail and "allow_compromised" in detail
    allowed(k, 1, Use.PROCESS, now, allow=True)
    assert "compromised" in refused(replace(k, min_encryption_version=1), 1, Use.PROTECT, now,
                                    allow=True)
    allowed(k, 2, Use.PROCESS, now)  # the other version is unaffected


def test_compromised_key_processes_only_with_the_flag_and_never_protects() -> None:
    k = key(state=KeyState.COMPROMISED)
    now = T0 + timedelta(days=1)
    assert "the key is compromised" in refused(k, 1, Use.PROCESS, now)
    allowed(k, 1, Use.PROCESS, now, allow=True)
    assert "compromised" in refused(k, 1, Use.PROTECT, now, allow=True)
    # The flag does not lift the recipient period.
    assert "recipient" in refused(k, 1, Use.PROCESS, T0 + timedelta(days=90), allow=True)


# -- usage limits (SP 800-38D §8.3) and rotation ----------------------------------------------
def test_usage_limit_defaults_and_threshold() -> None:
    assert usage_limit(key()) == GCM_RANDOM_NONCE_LIMIT == 2 ** 32
    assert usage_limit(key(algorithm="CHACHA20_POLY1305")) == 2 ** 32
    assert usage_limit(key(algorithm="HMAC_SHA256", purpose=Purpose.MAC)) is None
    assert rotation_threshold(key(algorithm="HMAC_SHA256", purpose=Purpose.MAC)) is None
    assert rotation_threshold(key()) == 3_865_470_566  # floor(0.9 * 2^32)
    assert rotation_threshold(key(usage_limit=10)) == 9
    assert rotation_threshold(key(usage_limit=10, usage_rotate_fraction=0.5)) == 5
    # Always below the hard limit (when above 1): a rotation starts before refusals.
    assert rotation_threshold(key(usage_limit=10, usage_rotate_fraction=1.0)) == 9
    assert rotation_threshold(key(usage_limit=5)) == 4
    assert rotation_threshold(key(usage_limit=2)) == 1
    assert rotation_threshold(key(usage_limit=1, usage_rotate_fraction=0.01)) == 1
    assert usage_limit(key(algorithm="HMAC_SHA256", purpose=Purpose.MAC, usage_limit=7)) == 7


def test_rotation_due_at_its_instant_and_only_when_active() -> None:
    due = T0 + timedelta(days=90)
    k = key(next_rotation_time=due)
    assert not rotation_due(k, due - US)
    assert rotation_due(k, due)
    assert not rotation_due(key(), due)
    assert not rotation_due(replace(k, state=KeyState.SUSPENDED), due)
    assert not rotation_due(replace(k, deactivation_date=due), due)
    pre = replace(k, state=KeyState.PRE_ACTIVE, activation_date=due)
    assert rotation_due(pre, due)
