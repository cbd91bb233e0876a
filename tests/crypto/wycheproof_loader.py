"""Finding and parametrizing the shared Wycheproof vectors (never copied into the project).

The vectors live at ``<project root>/../shared/vectors/wycheproof/testvectors_v1/``
(C2SP/wycheproof, Apache-2.0; provenance in ``shared/vectors/README.md``). If a file is
absent, its tests are skipped with a reason instead of failing at import.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = PROJECT_ROOT.parent / "shared" / "vectors" / "wycheproof" / "testvectors_v1"

Group = dict[str, Any]
Case = dict[str, Any]


@functools.cache
def load(filename: str) -> dict[str, Any] | None:
    path = VECTORS_DIR / filename
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def cases(filename: str) -> Iterator[tuple[Group, Case]]:
    data = load(filename)
    if data is None:
        return
    for group in data["testGroups"]:
        for case in group["tests"]:
            yield group, case


def params(
    filename: str,
    skip_reason: Callable[[Group, Case], str | None] = lambda g, c: None,
) -> list[Any]:
    """One ``pytest.param(group, case)`` per test, id ``tc<N>`` (plus ``-skip-<why>``).

    ``skip_reason`` returns a short slug for a case outside keykeeper's formats; it is
    put in the id so the skipped cases are counted visibly, and in the skip reason.
    """
    if load(filename) is None:
        return [
            pytest.param(
                None,
                None,
                id=f"{filename}-absent",
                marks=pytest.mark.skip(reason=f"Wycheproof file {filename} not in {VECTORS_DIR}"),
            )
        ]
    out = []
    for group, case in cases(filename):
        reason = skip_reason(group, case)
        test_id = f"tc{case['tcId']}"
        if reason is None:
            out.append(pytest.param(group, case, id=test_id))
        else:
            out.append(
                pytest.param(
                    group,
                    case,
                    id=f"{test_id}-skip-{reason}",
                    marks=pytest.mark.skip(reason=f"outside keykeeper's formats: {reason}"),
                )
            )
    return out


def h(value: str) -> bytes:
    return bytes.fromhex(value)
