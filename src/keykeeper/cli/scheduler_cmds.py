"""``keykeeper scheduler status`` and ``keykeeper scheduler run JOB`` (docs/scheduler.md)."""

from __future__ import annotations

import typer

from keykeeper.cli._state import emit_fields, emit_json, emit_table, get_state

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """The answering node's scheduler role and each lifecycle job's last run."""
    st = get_state(ctx)
    with st.client() as kk:
        found = kk.scheduler_status()
    if st.json:
        emit_json(found)
        return
    emit_fields([("node", found.node_id), ("role", found.role)])
    emit_table(("job", "every (s)", "last node", "last start", "outcome", "done", "failed",
                "detail"),
               [(j.name, f"{j.interval_seconds:g}", j.node, j.last_started_at,
                 j.last_outcome, j.items_done, j.items_failed, j.detail) for j in found.jobs])


@app.command("run")
def run(ctx: typer.Context,
        job: str = typer.Argument(..., help="crypto_periods, expiry_notices, rotation, "
                                  "destruction or approval_expiry.")) -> None:
    """Run one lifecycle job now (on the leader; a standby answers with the leader)."""
    st = get_state(ctx)
    with st.client() as kk:
        result = kk.run_scheduler_job(job)
    if st.json:
        emit_json(result)
        return
    emit_fields([("job", result.job), ("outcome", result.outcome), ("done", result.done),
                 ("failed", result.failed), ("detail", result.detail or None)])
