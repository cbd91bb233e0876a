"""Durations given as seconds or as strings such as ``90d``, ``12h``, ``30m``, ``45s``."""

from __future__ import annotations

import re

from keykeeper.errors import InvalidArgument

__all__ = ["parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"([0-9]{1,10})([smhdw]?)")
MAX_SECONDS = 100 * 365 * 86400  # 100 years, as Cloud KMS bounds rotation periods


def parse_duration(value: int | str, *, what: str = "duration") -> int:
    """Return the duration in seconds; raise :class:`InvalidArgument` if malformed, under
    1 second or over 100 years. Digits are ASCII only."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{what} must be seconds or a string such as '90d'")
    if isinstance(value, int):
        seconds = value
    else:
        match = _PATTERN.fullmatch(value.strip())
        if match is None:
            raise InvalidArgument(f"{what} must be seconds or a string such as '90d'")
        seconds = int(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 1:
        raise InvalidArgument(f"{what} must be at least 1 second")
    if seconds > MAX_SECONDS:
        raise InvalidArgument(f"{what} must be at most 100 years")
    return seconds
