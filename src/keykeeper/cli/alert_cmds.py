"""``keykeeper alerts``: list alerts (``--state``, ``--rule``, ``--severity``, ``--since``),
``keykeeper alerts ack ID`` to acknowledge one, and ``keykeeper alerts usage KEY`` for a
key's usage statistics. ``--format json`` prints the API's shapes."""

from __future__ import annotations

import typer

from keykeeper.cli._state import emit_fields, emit_json, emit_table, get_state
from keykeeper.client._alerts import Alert, KeyUsage

__all__ = ["app"]

app = typer.Typer(no_args_is_help=False, invoke_without_command=True)


def _list(ctx: typer.Context, state: str | None, rule: str | None, severity: str | None,
          since: str | None, limit: int) -> None:
    st = get_state(ctx)
    found: list[Alert] = []
    with st.client() as kk:
        for alert in kk.iter_alerts(state=state, rule=rule, severity=severity, since=since):
            found.append(alert)
            if len(found) >= limit:
                break
    if st.json:
        emit_json({"alerts": found})
        return
    emit_table(["id", "severity", "rule", "subject", "count", "last seen", "state", "summary"],
               ((a.id, a.severity, a.rule, a.subject, a.count, a.last_seen, a.state,
                 a.summary) for a in found))


STATE = typer.Option(None, "--state", help="open | acknowledged")
RULE = typer.Option(None, "--rule", help="rate_spike, failure_burst, unusable_key_use, "
                    "new_source, off_hours, or a scheduler notice")
SEVERITY = typer.Option(None, "--severity", help="info | warning | critical")
SINCE = typer.Option(None, "--since", help="Last seen since: RFC 3339 or a duration ago "
                     "(15m, 24h, 7d).")
LIMIT = typer.Option(100, "--limit", min=1, help="Show at most this many.")


@app.callback()
def alerts(ctx: typer.Context, state: str | None = STATE, rule: str | None = RULE,
           severity: str | None = SEVERITY, since: str | None = SINCE,
           limit: int = LIMIT) -> None:
    """List alerts, newest first (or run a subcommand: list, ack, usage)."""
    if ctx.invoked_subcommand is None:
        _list(ctx, state, rule, severity, since, limit)


@app.command("list")
def list_(ctx: typer.Context, state: str | None = STATE, rule: str | None = RULE,
          severity: str | None = SEVERITY, since: str | None = SINCE,
          limit: int = LIMIT) -> None:
    """List alerts, newest first."""
    _list(ctx, state, rule, severity, since, limit)


@app.command("ack")
def ack(ctx: typer.Context,
        alert_id: str = typer.Argument(..., help="Alert id (al-...), as the list shows.")
        ) -> None:
    """Acknowledge an alert."""
    st = get_state(ctx)
    with st.client() as kk:
        alert = kk.acknowledge_alert(alert_id)
    if st.json:
        emit_json(alert)
        return
    emit_fields([("id", alert.id), ("rule", alert.rule), ("severity", alert.severity),
                 ("subject", alert.subject), ("summary", alert.summary),
                 ("count", alert.count), ("state", alert.state),
                 ("acknowledged by", alert.acknowledged_by)])


@app.command("usage")
def usage(ctx: typer.Context,
          key: str = typer.Argument(..., help="Key id, namespace:name or name.")) -> None:
    """Usage statistics of a key (written by each server every 5 seconds)."""
    st = get_state(ctx)
    with st.client() as kk:
        found: KeyUsage = kk.key_usage(key)
    if st.json:
        emit_json(found)
        return
    emit_fields([("key id", found.key_id), ("total", found.total),
                 ("first used", found.first_used), ("last used", found.last_used),
                 ("last accessed", found.last_accessed)])
    rows: list[tuple[str, object, int, object]] = [
        ("operation", u.operation, u.count, u.last_used) for u in found.operations]
    rows += [("principal", u.principal, u.count, u.last_used) for u in found.principals]
    rows += [("version", u.version, u.count, u.last_used) for u in found.versions]
    emit_table(["by", "name", "count", "last used"], rows)
