"""The conformance summary: one row per profile (passed, failed, skipped), then the
failed and skipped files with their step and reason; and the same as JSON."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keykeeper.kmip.conformance.runner import FileResult

__all__ = ["PROFILES", "as_json", "profile_of", "table"]

PROFILES = ("AKLC", "AX", "BL", "CS-AC", "CS-BC", "CS-RNG", "MSGENC", "OMOS", "PKCS11", "QS",
            "SASED", "SKFF", "SKLC", "SUITEB", "TL")
"""The profile prefixes of the KMIP 1.4 and 2.1 test cases (KMIP Profiles 2.1 §6)."""

_SUFFIX = re.compile(r"-[MO]-.*$")


def profile_of(name: str) -> str:
    """The profile prefix of a test-case file name: ``CS-BC-M-GCM-1-21.xml`` -> ``CS-BC``,
    ``SUITEB_128-M-1-14.xml`` -> ``SUITEB``; an unknown name gives what precedes ``-M-`` or
    ``-O-``."""
    stem = name.removesuffix(".xml")
    for prefix in sorted(PROFILES, key=len, reverse=True):
        if stem.startswith(prefix) and stem[len(prefix):len(prefix) + 1] in ("-", "_"):
            return prefix
    return _SUFFIX.sub("", stem)


def _counts(results: Sequence[FileResult]) -> dict[str, dict[str, int]]:
    rows: dict[str, dict[str, int]] = {}
    for r in results:
        row = rows.setdefault(r.profile, {"passed": 0, "failed": 0, "skipped": 0})
        row[r.status] += 1
    return dict(sorted(rows.items()))


def table(results: Sequence[FileResult]) -> str:
    """The summary as text for people (see the module docstring)."""
    rows = _counts(results)
    total = {k: sum(r[k] for r in rows.values()) for k in ("passed", "failed", "skipped")}
    width = max([len(p) for p in rows] + [7])
    lines = [f"{'profile':<{width}}  passed  failed  skipped"]
    for name, row in [*rows.items(), ("total", total)]:
        lines.append(f"{name:<{width}}  {row['passed']:>6}  {row['failed']:>6}  "
                     f"{row['skipped']:>7}")
    for status in ("failed", "skipped"):
        listed = [r for r in results if r.status == status]
        if listed:
            lines.append("")
            lines.append(f"{status}:")
            lines.extend(f"  {r.name}: {r.detail}" for r in listed)
    return "\n".join(lines)


def as_json(results: Sequence[FileResult]) -> dict[str, Any]:
    """``{"profiles": {PROFILE: {passed, failed, skipped}}, "files": [{name, profile,
    status, detail}]}``."""
    return {"profiles": _counts(results),
            "files": [{"name": r.name, "profile": r.profile, "status": r.status,
                       "detail": r.detail} for r in results]}
