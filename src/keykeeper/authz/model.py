"""Principals, roles and grants as immutable values (the store keeps them as rows).

A *principal* is who calls: a person or a service, holding roles and free-form metadata
(used by grant conditions, e.g. ``tenant``). A *role* is a named set of operations: the
most its holders may ever do (least privilege; NIST SP 800-57 Part 2 §6.1 roles). A
*grant* gives a principal or a role a set of operations on a scope of keys; nothing is
allowed without one (deny by default).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from keykeeper.authz.condition import Condition
from keykeeper.errors import InvalidArgument

__all__ = ["ROOT", "Grant", "Principal", "Role", "Scope", "check_principal_name"]

ROOT = "root"  # the break-glass principal of the init token; no principal row may take it
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_GLOB = re.compile(r"[A-Za-z0-9._*?-]{1,256}")


def check_principal_name(name: str, what: str = "principal name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(f"{what} must match [A-Za-z0-9._@-]{{1,128}}")
    return name


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls. ``roles`` name :class:`Role` s; ``metadata`` is str -> str."""

    name: str
    kind: str = "service"                       # "person" | "service"
    roles: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    certificate_subjects: tuple[str, ...] = ()
    rate_limit: float | None = None             # requests per second; None: default
    disabled: bool = False
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_root(self) -> bool:
        return self.name == ROOT


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    description: str
    operations: tuple[str, ...]
    builtin: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    # fnmatch's translation uses atomic groups, so no pattern backtracks exponentially
    # (a naive ".*" per star made "*-*-*-*-*-*-prod" take over a minute on a 128-character
    # name). The pattern alphabet excludes "[", so only "*" and "?" are special.
    return re.compile(fnmatch.translate(pattern))


@dataclass(frozen=True, slots=True)
class Scope:
    """Which keys a grant covers: a namespace (or ``*``), a glob over key names
    (``*`` any run, ``?`` one character) and labels that must all match."""

    namespace: str = "*"
    key_pattern: str = "*"
    labels: Mapping[str, str] = field(default_factory=dict)
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.namespace != "*" and not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", self.namespace):
            raise InvalidArgument("scope namespace must be a namespace name or '*'")
        if not _GLOB.fullmatch(self.key_pattern):
            raise InvalidArgument("scope key_pattern must match [A-Za-z0-9._*?-]{1,256}")
        if len(self.labels) > 64:
            raise InvalidArgument("scope labels may hold at most 64 entries")
        object.__setattr__(self, "_regex", None if self.key_pattern == "*"
                           else _glob_regex(self.key_pattern))

    def covers(self, namespace: str, name: str, labels: Mapping[str, str]) -> bool:
        if self.namespace != "*" and self.namespace != namespace:
            return False
        if self._regex is not None and not self._regex.fullmatch(name):
            return False
        return all(labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True, slots=True)
class Grant:
    """``operations`` on ``scope`` for ``grantee`` (a principal or a role)."""

    id: str
    grantee_kind: str                  # "principal" | "role"
    grantee: str
    operations: tuple[str, ...]
    scope: Scope
    condition: Condition | None = None
    created_by: str = ""
    created_at: datetime | None = None
