"""The dispatch table: Operation enumeration value -> handler (one module per operation,
each exposing ``OPERATION`` and ``handle``; kmip/ops/base.py gives the contract)."""

from __future__ import annotations

from types import ModuleType

from keykeeper.kmip.ops.base import Handler

__all__ = ["OPERATIONS"]

# Each operation module is listed here, one line each.
_MODULES: list[ModuleType] = [
]

OPERATIONS: dict[int, Handler] = {int(m.OPERATION): m.handle for m in _MODULES}
