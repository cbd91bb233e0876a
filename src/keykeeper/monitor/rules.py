"""Anomaly rule settings: defaults, and the JSON file named by ``KEYKEEPER_ALERT_RULES``.

The file is one JSON object with a member per rule; each member may set ``enabled``
and tune that rule's numbers. Members left out keep their defaults, and an unknown rule
or field is refused (InvalidArgument) so a typo never silently turns a rule off::

    {"rate_spike": {"factor": 8, "min_rate": 50},
     "failure_burst": {"threshold": 20},
     "new_source": {"enabled": false},
     "off_hours": {"days": "Mon-Fri", "hours": "08:00-18:00", "tz": "Europe/Paris"}}

Times are seconds; rates are requests per second. docs/monitoring.md lists every field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from keykeeper.errors import InvalidArgument

__all__ = [
    "FailureBurst",
    "NewSource",
    "OffHours",
    "RateSpike",
    "Rules",
    "UnusableKeyUse",
    "load_rules",
    "parse_rules",
]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SENSITIVE_DEFAULT = (
    "key.destroy_version", "key.schedule_destruction", "key.compromise",
    "key.compromise_version", "key.bulk_revoke", "key.trim", "principal.*", "grant.*",
    "role.*", "token.create", "namespace.delete", "approval_policy.update", "sys.seal")


@dataclass(frozen=True)
class RateSpike:
    """Requests per principal and per key over ``window`` seconds against an EWMA baseline
    (time constant ``baseline_seconds``) of the traffic before that window."""

    enabled: bool = True
    severity: str = "warning"
    window: float = 10.0
    baseline_seconds: float = 300.0
    factor: float = 5.0
    min_rate: float = 20.0
    warmup: float = 300.0
    cooldown: float = 60.0


@dataclass(frozen=True)
class FailureBurst:
    """``threshold`` failures (``error_codes``) within ``window`` seconds, per principal or
    per source address."""

    enabled: bool = True
    severity: str = "critical"
    window: float = 10.0
    threshold: int = 10
    error_codes: tuple[str, ...] = ("decryption_failed", "unauthenticated")
    cooldown: float = 60.0


@dataclass(frozen=True)
class UnusableKeyUse:
    """A data-plane call refused (failed_precondition) on a key or version that is
    suspended, compromised, pending destruction or destroyed."""

    enabled: bool = True
    severity: str = "warning"
    cooldown: float = 300.0


@dataclass(frozen=True)
class NewSource:
    """A principal first seen more than ``learning_period`` seconds ago calling from an
    address it has not used before."""

    enabled: bool = True
    severity: str = "warning"
    learning_period: float = 86_400.0
    max_sources: int = 256


@dataclass(frozen=True)
class OffHours:
    """A sensitive operation outside ``days`` / ``hours`` in ``tz``; off unless ``hours``
    is set."""

    enabled: bool = True
    severity: str = "warning"
    days: str = "Mon-Fri"
    hours: str = ""
    tz: str = "UTC"
    operations: tuple[str, ...] = SENSITIVE_DEFAULT
    cooldown: float = 300.0
    # Parsed from the above by parse_rules:
    weekdays: frozenset[int] = field(default=frozenset(), repr=False)
    start: time | None = field(default=None, repr=False)
    end: time | None = field(default=None, repr=False)
    zone: ZoneInfo | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Rules:
    rate_spike: RateSpike = RateSpike()
    failure_burst: FailureBurst = FailureBurst()
    unusable_key_use: UnusableKeyUse = UnusableKeyUse()
    new_source: NewSource = NewSource()
    off_hours: OffHours = OffHours()


_SEVERITIES = ("info", "warning", "critical")
_PARSED = ("weekdays", "start", "end", "zone")


def _weekdays(text: str) -> frozenset[int]:
    found: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise InvalidArgument(f"off_hours.days: unknown day in '{text}' (use Mon-Fri, "
                                  "Sat,Sun)")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        found.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(found)


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"off_hours.hours: '{text}' is not HH:MM") from None


def _off_hours(rule: OffHours) -> OffHours:
    if not rule.hours:
        return replace(rule, enabled=False)
    start, sep, end = rule.hours.partition("-")
    if not sep:
        raise InvalidArgument("off_hours.hours must be HH:MM-HH:MM")
    try:
        zone = ZoneInfo(rule.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"off_hours.tz: unknown time zone '{rule.tz}'") from None
    return replace(rule, weekdays=_weekdays(rule.days), start=_clock(start),
                   end=_clock(end), zone=zone)


def _member(name: str, default: Any, given: object) -> Any:
    if not isinstance(given, dict):
        raise InvalidArgument(f"alert rule '{name}' must be a JSON object")
    known = {f.name: f for f in fields(default) if f.name not in _PARSED}
    values: dict[str, Any] = {}
    for key, value in given.items():
        if key not in known:
            raise InvalidArgument(f"alert rule '{name}' has no field '{key}' (fields: "
                                  f"{', '.join(sorted(known))})")
        current = getattr(default, key)
        if isinstance(current, bool):
            ok = isinstance(value, bool)
        elif isinstance(current, tuple):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            value = tuple(value) if ok else value
        elif isinstance(current, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
            value = type(current)(value) if ok else value
        else:
            ok = isinstance(value, str)
        if not ok:
            raise InvalidArgument(f"alert rule '{name}': field '{key}' has the wrong type "
                                  "(or is not positive)")
        values[key] = value
    rule = replace(default, **values)
    if rule.severity not in _SEVERITIES:
        raise InvalidArgument(f"alert rule '{name}': severity must be info, warning or "
                              "critical")
    return rule


def parse_rules(document: object) -> Rules:
    """Rules from the decoded JSON object (see the module docstring); InvalidArgument for
    an unknown rule or field, a wrong type, or a bad day, hour or time zone."""
    if not isinstance(document, dict):
        raise InvalidArgument("the alert rules file must hold one JSON object")
    base = Rules()
    values: dict[str, Any] = {}
    for name, given in document.items():
        if name not in {f.name for f in fields(base)}:
            raise InvalidArgument(f"unknown alert rule '{name}'")
        values[name] = _member(name, getattr(base, name), given)
    rules = replace(base, **values)
    return replace(rules, off_hours=_off_hours(rules.off_hours))


def load_rules(path: Path | None) -> Rules:
    """The rules in the JSON file at ``path`` (None: the defaults, off_hours off)."""
    if path is None:
        return parse_rules({})
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise InvalidArgument(f"cannot read the alert rules file {path}: "
                              f"{exc.strerror}") from None
    except ValueError:
        raise InvalidArgument(f"the alert rules file {path} is not valid JSON") from None
    return parse_rules(document)
