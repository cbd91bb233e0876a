"""The scheduler rows of the route table (rest/routes.py appends them).

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import scheduler_handlers as h
from keykeeper.rest import scheduler_schemas as s

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["scheduler_routes"]


def scheduler_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("GET", "/v1/sys/scheduler", "scheduler.read", h.scheduler_status, None,
              s.SchedulerStatus, "This node's scheduler role (leader, standby, disabled) and "
              "each lifecycle job's interval and last run, by any node"),
        Route("POST", "/v1/sys/scheduler/run", "scheduler.run", h.run_job, s.RunJobRequest,
              s.RunJobResult, "Run one lifecycle job now, on the leader (409 "
              "failed_precondition on a standby, naming the leader)"),
    )
