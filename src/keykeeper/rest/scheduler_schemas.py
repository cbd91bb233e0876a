"""msgspec structs of the scheduler routes (rest/scheduler_routes.py; docs/scheduler.md).
Times are RFC 3339 UTC strings; intervals are seconds."""

from __future__ import annotations

from msgspec import Struct


class JobOut(Struct):
    name: str
    interval_seconds: float
    node: str | None = None              # the node that ran it last
    last_started_at: str | None = None
    last_finished_at: str | None = None
    last_outcome: str | None = None      # running | success | partial | error
    items_done: int = 0
    items_failed: int = 0
    detail: str | None = None


class SchedulerStatus(Struct):
    node_id: str
    role: str                            # leader | standby | disabled
    jobs: list[JobOut]


class RunJobRequest(Struct, forbid_unknown_fields=True):
    job: str


class RunJobResult(Struct):
    job: str
    outcome: str
    done: int
    failed: int
    detail: str
