"""Scheduler routes of the SDK (``/v1/sys/scheduler``; docs/scheduler.md)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from keykeeper.client._http import Http

__all__ = ["JobRun", "JobRunResult", "SchedulerMixin", "SchedulerStatus"]


class JobRun(msgspec.Struct, frozen=True, kw_only=True):
    """A lifecycle job: its interval (seconds) and its last run by any node (all None if
    it never ran). ``last_outcome``: running, success, partial or error."""

    name: str
    interval_seconds: float
    node: str | None = None
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_outcome: str | None = None
    items_done: int = 0
    items_failed: int = 0
    detail: str | None = None


class SchedulerStatus(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    role: str          # leader | standby | disabled
    jobs: list[JobRun]


class JobRunResult(msgspec.Struct, frozen=True, kw_only=True):
    job: str
    outcome: str
    done: int
    failed: int
    detail: str


class SchedulerMixin:
    """The lifecycle scheduler; mixed into :class:`Client`."""

    _http: Http

    def scheduler_status(self) -> SchedulerStatus:
        """``GET /v1/sys/scheduler`` (``scheduler.read``): the answering node's role and
        each job's last run."""
        return self._http.call("GET", "/v1/sys/scheduler", SchedulerStatus)

    def run_scheduler_job(self, job: str) -> JobRunResult:
        """``POST /v1/sys/scheduler/run`` (``scheduler.run``): run ``job`` now. Raises
        FailedPrecondition on a standby (the message names the leader) and NotFound for an
        unknown job."""
        return self._http.call("POST", "/v1/sys/scheduler/run", JobRunResult,
                               body={"job": job})
