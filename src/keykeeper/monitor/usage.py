"""Per-key usage statistics gathered in memory between flushes (pure, thread-safe).

Each successful use of a key adds to one cell ``(key_id, version, operation, principal)``:
a count, and the first and last time of use. :meth:`UsageBuffer.take` hands the cells
over (the service writes them to the ``key_usage`` table every 5 seconds) and starts
afresh. At most ``max_cells`` cells are held; past that :meth:`add` answers True so the
caller flushes early, and cells beyond twice that are dropped (and counted).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

__all__ = ["UsageBuffer", "UsageCell", "UsageKey"]

UsageKey = tuple[str, int, str, str]   # key_id, version (0: none), operation, principal


@dataclass(slots=True)
class UsageCell:
    count: int
    first_used: datetime
    last_used: datetime


class UsageBuffer:
    def __init__(self, max_cells: int = 50_000) -> None:
        self._max = max_cells
        self._cells: dict[UsageKey, UsageCell] = {}
        self._lock = threading.Lock()
        self.dropped = 0

    def add(self, key: UsageKey, when: datetime, count: int = 1) -> bool:
        """Count ``count`` uses at ``when``; True when the buffer should be flushed now."""
        with self._lock:
            cell = self._cells.get(key)
            if cell is None:
                if len(self._cells) >= 2 * self._max:
                    self.dropped += count
                    return True
                self._cells[key] = UsageCell(count, when, when)
                return len(self._cells) >= self._max
            cell.count += count
            if when > cell.last_used:
                cell.last_used = when
            elif when < cell.first_used:
                cell.first_used = when
            return False

    def take(self) -> dict[UsageKey, UsageCell]:
        """Every cell gathered since the last take; the buffer is empty afterwards."""
        with self._lock:
            cells, self._cells = self._cells, {}
        return cells

    def put_back(self, cells: dict[UsageKey, UsageCell]) -> None:
        """Merge cells a failed flush could not write, to try again at the next one."""
        for key, cell in cells.items():
            self.add(key, cell.first_used, 0)
            self.add(key, cell.last_used, cell.count)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cells)
