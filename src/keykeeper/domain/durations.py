"""Durations given as seconds or as strings such as ``90d``, ``12h``, ``30m``, ``45s``."""

from __future__ import annotations

import re

from keykeeper.errors import InvalidArgument

__all__ = ["parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"(\d{1,9})([smhdw]?)")


def parse_duration(value: int | str, *, what: str = "duration") -> int:
    """Return the duration in seconds; raise :class:`InvalidArgument` if malformed or < 1."""
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
    return seconds
