"""Anomaly detection over the stream of audit events: pure, with time injected.

The service layer (service/monitoring.py) turns each audit record into an :class:`Event`
(its time in seconds since the epoch, and for a refused data-plane call the state of the
key or version it named) and feeds :meth:`Detector.observe`, which answers the
:class:`Finding` s that event raised. Nothing here reads a clock, a store or the network,
so tests replay any traffic at any speed.

Rules (settings in keykeeper.monitor.rules):

* ``rate_spike`` -- requests per principal and per key over the last ``window`` seconds
  (default 10), counted in one-second buckets, against an exponentially weighted moving
  average (time constant ``baseline_seconds``, default 300) of the per-second rate of the
  traffic *before* that window; fires above ``factor`` x baseline (5) and above
  ``min_rate`` (20/s), once the subject has been seen for ``warmup`` seconds (300).
* ``failure_burst`` -- ``threshold`` (10) failures with a listed error code
  (``decryption_failed``, ``unauthenticated``) within ``window`` (10) seconds, per
  principal or per source address.
* ``unusable_key_use`` -- a data-plane call refused with ``failed_precondition`` on a key
  or version that is suspended, compromised, pending destruction or destroyed (the
  version is the one the audit record names: pinned, or the ciphertext's); critical for
  a compromised or destroyed key or version.
* ``new_source`` -- a principal first seen more than ``learning_period`` ago (1 day)
  calling from an address it has not used before.
* ``off_hours`` -- a sensitive operation outside the configured days and hours.

A finding for the same rule and subject is raised at most once per ``cooldown`` here;
the alert service deduplicates across nodes as well.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keykeeper.authz.operations import DATA_PLANE, matches
from keykeeper.monitor.rules import Rules

__all__ = ["UNUSABLE_STATES", "Detector", "Event", "Finding"]

UNUSABLE_STATES = frozenset({"suspended", "compromised", "pending-destruction", "destroyed",
                             "destroyed-compromised", "pre-active", "deactivated"})
_CRITICAL_STATES = frozenset({"compromised", "destroyed", "destroyed-compromised"})
_DATA_PLANE = frozenset(DATA_PLANE)
MAX_SUBJECTS = 20_000   # per rule: the least recently seen are forgotten beyond


@dataclass(frozen=True, slots=True)
class Event:
    """What the rules read of one audit record. ``time``: seconds since the epoch.
    ``key_state``: for a refused data-plane call, the state of the key (or of the
    version, when that is what forbids use), as the service found it."""

    time: float
    operation: str
    outcome: str                    # success | error | pending
    error_code: str | None = None
    principal: str | None = None
    source: str | None = None
    key_id: str | None = None
    key_version: int | None = None
    key_state: str | None = None
    state_of: str = "key"           # whose state key_state is: "key" | "version"


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: str
    subject: str
    summary: str
    evidence: dict[str, Any]


class _Bounded(OrderedDict[str, Any]):
    """An LRU map of per-subject state, at most MAX_SUBJECTS entries."""

    def touch(self, key: str, make: Any) -> Any:
        value = self.get(key)
        if value is None:
            value = self[key] = make()
            if len(self) > MAX_SUBJECTS:
                self.popitem(last=False)
        else:
            self.move_to_end(key)
        return value


class _Rate:
    """One subject's one-second buckets over the window, and its baseline."""

    __slots__ = ("buckets", "first", "second", "sum", "total", "weight")

    def __init__(self, second: int, window: int) -> None:
        self.first = second
        self.second = second            # the bucket being filled
        self.buckets: deque[int] = deque([0] * window, maxlen=window)
        self.total = 0                  # sum of buckets
        self.sum = 0.0                  # EWMA of the per-second rate before the window,
        self.weight = 0.0               # and of 1: sum / weight corrects the start-up bias

    @property
    def baseline(self) -> float:
        """Requests per second before the window (0 until a second has left it)."""
        return self.sum / self.weight if self.weight else 0.0

    def advance(self, second: int, alpha: float) -> None:
        steps = second - self.second
        if steps <= 0:
            return
        window = len(self.buckets)
        for _ in range(min(steps, window)):
            leaving = self.buckets[0]
            self.sum += alpha * (leaving - self.sum)
            self.weight += alpha * (1 - self.weight)
            self.total -= leaving
            self.buckets.append(0)
        if steps > window:  # whole seconds of silence also leave the window
            decay = (1 - alpha) ** (steps - window)
            self.sum *= decay
            self.weight = 1 - (1 - self.weight) * decay
        self.second = second


class Detector:
    """Feeds events through the enabled rules; see the module docstring."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._rates = _Bounded()
        self._failures = _Bounded()
        self._sources = _Bounded()       # principal -> (first seen, {source: first seen})
        self._fired = _Bounded()         # (rule, subject) -> last time raised here
        r = rules.rate_spike
        self._window = max(1, round(r.window))
        self._alpha = 1 - math.exp(-1 / r.baseline_seconds)

    def observe(self, event: Event) -> list[Finding]:
        """The findings ``event`` raises (usually none)."""
        found: list[Finding] = []
        rules = self.rules
        if rules.rate_spike.enabled:
            if event.principal:
                self._rate(event, "principal", event.principal, found)
            if event.key_id:
                self._rate(event, "key", event.key_id, found)
        if rules.failure_burst.enabled and event.outcome == "error" \
                and event.error_code in rules.failure_burst.error_codes:
            if event.principal:
                self._failure(event, "principal", event.principal, found)
            if event.source:
                self._failure(event, "source", event.source, found)
        if rules.unusable_key_use.enabled:
            self._unusable(event, found)
        if rules.new_source.enabled:
            self._new_source(event, found)
        if rules.off_hours.enabled:
            self._off_hours(event, found)
        return found

    def _cooled(self, rule: str, subject: str, now: float, cooldown: float) -> bool:
        """True (and remembered) unless this rule fired for this subject within cooldown."""
        key = f"{rule}\x00{subject}"
        last = self._fired.get(key)
        if last is not None and now - last < cooldown:
            return False
        self._fired.touch(key, lambda: now)
        self._fired[key] = now
        return True

    # -- rate_spike ---------------------------------------------------------------------------
    def _rate(self, event: Event, kind: str, name: str, found: list[Finding]) -> None:
        rule = self.rules.rate_spike
        second = math.floor(event.time)
        state: _Rate = self._rates.touch(f"{kind}:{name}",
                                         lambda: _Rate(second, self._window))
        state.advance(second, self._alpha)
        state.buckets[-1] += 1
        state.total += 1
        rate = state.total / self._window
        if (rate < rule.min_rate or rate <= rule.factor * state.baseline
                or second - state.first < rule.warmup):
            return
        subject = f"{kind}:{name}"
        if not self._cooled("rate_spike", subject, event.time, rule.cooldown):
            return
        found.append(Finding(
            "rate_spike", rule.severity, subject,
            f"{kind} {name}: {rate:.1f} requests/s over {self._window} s, "
            f"{rate / state.baseline if state.baseline else math.inf:.1f}x its baseline of "
            f"{state.baseline:.2f}/s",
            {kind: name, "window_seconds": self._window, "requests": state.total,
             "rate": round(rate, 2), "baseline_rate": round(state.baseline, 3),
             "factor": rule.factor, "operation": event.operation}))

    # -- failure_burst -----------------------------------------------------------------------
    def _failure(self, event: Event, kind: str, name: str, found: list[Finding]) -> None:
        rule = self.rules.failure_burst
        times: deque[float] = self._failures.touch(
            f"{kind}:{name}", lambda: deque(maxlen=rule.threshold))
        times.append(event.time)
        if len(times) < rule.threshold or event.time - times[0] > rule.window:
            return
        subject = f"{kind}:{name}"
        if not self._cooled("failure_burst", subject, event.time, rule.cooldown):
            return
        evidence: dict[str, Any] = {kind: name, "failures": len(times),
                                    "window_seconds": rule.window,
                                    "error_code": event.error_code,
                                    "operation": event.operation}
        if event.key_id:
            evidence["key_id"] = event.key_id
        if kind == "principal" and event.source:
            evidence["source"] = event.source
        if kind == "source" and event.principal:
            evidence["principal"] = event.principal
        found.append(Finding(
            "failure_burst", rule.severity, subject,
            f"{len(times)} failed requests ({event.error_code}) within "
            f"{event.time - times[0]:.1f} s from {kind} {name}", evidence))

    # -- unusable_key_use --------------------------------------------------------------------
    def _unusable(self, event: Event, found: list[Finding]) -> None:
        rule = self.rules.unusable_key_use
        state = event.key_state
        if (event.error_code != "failed_precondition" or event.operation not in _DATA_PLANE
                or not event.key_id or state not in UNUSABLE_STATES):
            return
        who = event.principal or "-"
        subject = f"key:{event.key_id}:principal:{who}"
        if not self._cooled("unusable_key_use", subject, event.time, rule.cooldown):
            return
        severity = "critical" if state in _CRITICAL_STATES else rule.severity
        evidence: dict[str, Any] = {"key_id": event.key_id, "state": state,
                                    "state_of": event.state_of,
                                    "operation": event.operation, "principal": who}
        if event.key_version is not None:
            evidence["key_version"] = event.key_version
        if event.source:
            evidence["source"] = event.source
        what = (f"version {event.key_version} of key {event.key_id}"
                if event.state_of == "version" else f"key {event.key_id}")
        found.append(Finding("unusable_key_use", severity, subject,
                             f"{who} tried {event.operation} with {what}, "
                             f"which is {state}", evidence))

    # -- new_source --------------------------------------------------------------------------
    def _new_source(self, event: Event, found: list[Finding]) -> None:
        rule = self.rules.new_source
        if not event.principal or not event.source:
            return
        first, known = self._sources.touch(event.principal, lambda: (event.time, {}))
        if event.source in known:
            return
        if len(known) >= rule.max_sources:
            known.pop(next(iter(known)))
        known[event.source] = event.time
        if event.time - first < rule.learning_period or len(known) == 1:
            return
        found.append(Finding(
            "new_source", rule.severity, f"principal:{event.principal}:source:{event.source}",
            f"principal {event.principal} called from a new address {event.source}",
            {"principal": event.principal, "source": event.source,
             "known_sources": sorted(s for s in known if s != event.source)[:10],
             "operation": event.operation,
             "principal_first_seen": _stamp(first)}))

    # -- off_hours ---------------------------------------------------------------------------
    def _off_hours(self, event: Event, found: list[Finding]) -> None:
        rule = self.rules.off_hours
        if rule.zone is None or rule.start is None or rule.end is None:
            return
        if not any(matches(p, event.operation) for p in rule.operations):
            return
        local = datetime.fromtimestamp(event.time, rule.zone)
        now = local.time()
        inside = (rule.start <= now < rule.end if rule.start <= rule.end
                  else now >= rule.start or now < rule.end)
        if local.weekday() in rule.weekdays and inside:
            return
        who = event.principal or "-"
        subject = f"principal:{who}:operation:{event.operation}"
        if not self._cooled("off_hours", subject, event.time, rule.cooldown):
            return
        evidence: dict[str, Any] = {"principal": who, "operation": event.operation,
                                    "outcome": event.outcome, "local_time": local.isoformat(),
                                    "allowed": f"{rule.days} {rule.hours} {rule.tz}"}
        if event.key_id:
            evidence["key_id"] = event.key_id
        if event.source:
            evidence["source"] = event.source
        found.append(Finding("off_hours", rule.severity, subject,
                             f"{who} ran {event.operation} outside working hours "
                             f"({local:%a %H:%M} {rule.tz})", evidence))


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
