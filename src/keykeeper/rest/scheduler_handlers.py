"""Handlers of the scheduler routes: this node's role and each job's last run, and running
one job now on the leader. Every check and action happens in service/lifecycle_jobs.py
(SchedulerControl); authorization here, as for the other sys routes."""

from __future__ import annotations

from collections.abc import Mapping

from keykeeper.rest import scheduler_schemas as s
from keykeeper.scheduler import JobRun
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.identity_views import rfc3339

Params = Mapping[str, str]


def _job(name: str, interval: float, run: JobRun | None) -> s.JobOut:
    if run is None:
        return s.JobOut(name=name, interval_seconds=interval)
    return s.JobOut(name=name, interval_seconds=interval, node=run.node,
                    last_started_at=rfc3339(run.last_started_at),
                    last_finished_at=rfc3339(run.last_finished_at),
                    last_outcome=run.last_outcome, items_done=run.items_done,
                    items_failed=run.items_failed, detail=run.detail)


def scheduler_status(svc: Services, ctx: RequestContext, p: Params,
                     body: None) -> s.SchedulerStatus:
    svc.authz.require(ctx, "scheduler.read")
    control = svc.scheduling
    return s.SchedulerStatus(node_id=control.node_id, role=control.role,
                             jobs=[_job(*row) for row in control.status()])


def run_job(svc: Services, ctx: RequestContext, p: Params,
            body: s.RunJobRequest) -> s.RunJobResult:
    svc.authz.require(ctx, "scheduler.run")
    result, run = svc.scheduling.run_now(body.job)
    outcome = run.last_outcome if run is not None and run.last_outcome else (
        "success" if result.failed == 0 else "partial")
    ctx.items, ctx.failed_items = result.done, result.failed
    return s.RunJobResult(job=body.job, outcome=outcome, done=result.done,
                          failed=result.failed, detail=result.detail)
