"""The anomaly rules, pure, with time injected: each fires on its burst, stays quiet on
steady normal traffic, and raises one finding per subject within its cooldown."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from keykeeper.errors import InvalidArgument
from keykeeper.monitor.anomaly import Detector, Event, Finding
from keykeeper.monitor.rules import Rules, parse_rules

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()  # a Monday, noon UTC


def ok(t: float, op: str = "encrypt", principal: str = "app", source: str = "10.0.0.1",
       key: str | None = "k-1") -> Event:
    return Event(time=t, operation=op, outcome="success", principal=principal,
                 source=source, key_id=key)


def failed(t: float, code: str = "decryption_failed", op: str = "decrypt",
           principal: str | None = "app", source: str = "10.0.0.9", key: str | None = "k-1",
           state: str | None = None) -> Event:
    return Event(time=t, operation=op, outcome="error", error_code=code, principal=principal,
                 source=source, key_id=key, key_state=state)


def feed(detector: Detector, events: list[Event]) -> list[Finding]:
    return [f for e in events for f in detector.observe(e)]


def steady(start: float, seconds: int, per_second: int, **kw: str) -> list[Event]:
    return [ok(start + s + i / per_second, **kw) for s in range(seconds)
            for i in range(per_second)]


# -- rate_spike ---------------------------------------------------------------------------------
def test_rate_spike_fires_on_a_burst_after_warmup_and_not_on_steady_traffic() -> None:
    d = Detector(Rules())
    assert feed(d, steady(T0, 600, 5)) == []          # 5/s for 10 minutes: normal
    burst = steady(T0 + 600, 10, 100)                 # then 100/s
    found, fired_at = [], None
    for event in burst:
        now = d.observe(event)
        if now and fired_at is None:
            fired_at = event.time
        found += now
    # Fires as soon as the window rate passes both bars: within the burst's first seconds.
    assert fired_at is not None and fired_at - (T0 + 600) < 3
    rules = {(f.rule, f.subject) for f in found}
    assert rules == {("rate_spike", "principal:app"), ("rate_spike", "key:k-1")}
    f = found[0]
    assert f.severity == "warning"
    assert f.evidence["baseline_rate"] == pytest.approx(5, rel=0.1)
    assert f.evidence["rate"] >= 20 and f.evidence["window_seconds"] == 10


def test_rate_spike_stays_quiet_during_warmup_and_below_min_rate() -> None:
    d = Detector(Rules())
    assert feed(d, steady(T0, 60, 200)) == []         # warm-up: no baseline yet
    d = Detector(Rules())
    feed(d, steady(T0, 400, 1))
    assert feed(d, steady(T0 + 400, 10, 15)) == []    # 15x baseline but under 20/s


def test_rate_spike_once_per_cooldown_and_off_when_disabled() -> None:
    d = Detector(Rules())
    feed(d, steady(T0, 400, 2))
    found = feed(d, steady(T0 + 400, 30, 100))
    assert len([f for f in found if f.subject == "principal:app"]) == 1
    rules = replace(Rules(), rate_spike=replace(Rules().rate_spike, enabled=False))
    d = Detector(rules)
    feed(d, steady(T0, 400, 2))
    assert feed(d, steady(T0 + 400, 30, 100)) == []


# -- failure_burst ------------------------------------------------------------------------------
def test_failure_burst_fires_at_the_threshold_within_the_window() -> None:
    d = Detector(Rules())
    found = feed(d, [failed(T0 + i * 0.5) for i in range(10)])
    subjects = {f.subject for f in found}
    assert subjects == {"principal:app", "source:10.0.0.9"}
    f = next(f for f in found if f.subject == "principal:app")
    assert f.rule == "failure_burst" and f.severity == "critical"
    assert f.evidence == {"principal": "app", "failures": 10, "window_seconds": 10.0,
                          "error_code": "decryption_failed", "operation": "decrypt",
                          "key_id": "k-1", "source": "10.0.0.9"}
    # More failures within the cooldown: no new finding.
    assert feed(d, [failed(T0 + 6 + i * 0.1) for i in range(20)]) == []


def test_failure_burst_quiet_when_spread_out_or_other_errors() -> None:
    d = Detector(Rules())
    assert feed(d, [failed(T0 + i * 2) for i in range(50)]) == []   # one per 2 s
    assert feed(d, [failed(T0 + 200 + i * 0.1, code="not_found") for i in range(50)]) == []


def test_failure_burst_counts_authentication_failures_per_source() -> None:
    d = Detector(Rules())
    found = feed(d, [failed(T0 + i * 0.1, code="unauthenticated", op="encrypt",
                            principal=None, key=None, source="192.0.2.7") for i in range(10)])
    assert [(f.rule, f.subject) for f in found] == [("failure_burst", "source:192.0.2.7")]


# -- unusable_key_use ---------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "severity"), [("suspended", "warning"),
                                                 ("compromised", "critical"),
                                                 ("pending-destruction", "warning"),
                                                 ("destroyed", "critical")])
def test_unusable_key_use(state: str, severity: str) -> None:
    d = Detector(Rules())
    found = feed(d, [failed(T0, code="failed_precondition", op="encrypt", state=state)])
    assert [(f.rule, f.severity, f.subject) for f in found] == [
        ("unusable_key_use", severity, "key:k-1:principal:app")]
    assert found[0].evidence["state"] == state
    assert feed(d, [failed(T0 + 1, code="failed_precondition", op="encrypt",
                           state=state)]) == []                      # cooldown


def test_unusable_key_use_ignores_usable_keys_and_admin_operations() -> None:
    d = Detector(Rules())
    assert feed(d, [failed(T0, code="failed_precondition", op="encrypt", state="active"),
                    failed(T0, code="failed_precondition", op="key.rotate",
                           state="suspended")]) == []


# -- new_source ---------------------------------------------------------------------------------
def test_new_source_after_learning_and_not_during_it() -> None:
    d = Detector(Rules())
    quiet = [ok(T0, source="10.0.0.1"), ok(T0 + 3600, source="10.0.0.2")]  # learning
    assert feed(d, quiet) == []
    assert feed(d, [ok(T0 + 86_400 + 5, source="10.0.0.1")]) == []         # known
    found = feed(d, [ok(T0 + 86_400 + 10, source="203.0.113.5")])
    assert [(f.rule, f.subject) for f in found] == [
        ("new_source", "principal:app:source:203.0.113.5")]
    assert found[0].evidence["known_sources"] == ["10.0.0.1", "10.0.0.2"]
    assert feed(d, [ok(T0 + 86_400 + 20, source="203.0.113.5")]) == []     # now known


# -- off_hours ----------------------------------------------------------------------------------
def test_off_hours_only_when_configured_and_only_sensitive_operations() -> None:
    night = datetime(2026, 3, 2, 23, 30, tzinfo=UTC).timestamp()            # Monday night
    assert feed(Detector(Rules()), [ok(night, op="key.compromise")]) == []  # off by default
    rules = parse_rules({"off_hours": {"days": "Mon-Fri", "hours": "08:00-18:00",
                                       "tz": "Europe/Paris"}})
    d = Detector(rules)
    assert feed(d, [ok(T0, op="key.compromise")]) == []                     # 13:00 Paris
    assert feed(d, [ok(night, op="encrypt")]) == []                         # not sensitive
    found = feed(d, [ok(night, op="grant.create", key=None)])
    assert [(f.rule, f.subject) for f in found] == [
        ("off_hours", "principal:app:operation:grant.create")]
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC).timestamp()
    assert [f.rule for f in feed(d, [ok(saturday, op="sys.seal", key=None)])] == ["off_hours"]


# -- configuration ------------------------------------------------------------------------------
def test_rules_file_tunes_and_turns_off_rules() -> None:
    rules = parse_rules({"failure_burst": {"threshold": 3, "window": 5},
                         "rate_spike": {"enabled": False}})
    assert rules.failure_burst.threshold == 3 and rules.failure_burst.window == 5.0
    assert not rules.rate_spike.enabled and not rules.off_hours.enabled
    d = Detector(rules)
    assert len(feed(d, [failed(T0 + i, principal=None) for i in range(3)])) == 1


@pytest.mark.parametrize("doc", [{"nope": {}}, {"failure_burst": {"thresh": 3}},
                                 {"failure_burst": {"threshold": -1}},
                                 {"rate_spike": {"severity": "loud"}},
                                 {"off_hours": {"hours": "8-18"}},
                                 {"off_hours": {"hours": "08:00-18:00", "tz": "Mars/Base"}},
                                 {"off_hours": {"hours": "08:00-18:00", "days": "Mon-Fry"}},
                                 []])
def test_bad_rules_are_refused(doc: object) -> None:
    with pytest.raises(InvalidArgument):
        parse_rules(doc)


def test_off_hours_window_may_wrap_midnight() -> None:
    d = Detector(parse_rules({"off_hours": {"days": "Mon-Sun", "hours": "22:00-06:00"}}))
    night = datetime(2026, 3, 3, 2, 0, tzinfo=UTC).timestamp()
    assert feed(d, [ok(night, op="key.trim")]) == []                        # inside
    assert [f.rule for f in feed(d, [ok(T0, op="key.trim")])] == ["off_hours"]  # noon
