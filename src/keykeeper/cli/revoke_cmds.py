"""``keykeeper key revoke``, ``key compromise-version`` and ``key compromise-report``:
the compromise response (dual control where the server's policy says so: the command
then prints one ``approval required`` line and exits 4, cli/main.py)."""

from __future__ import annotations

from typing import Any

import typer

from keykeeper.cli._state import (
    confirm,
    emit_fields,
    emit_json,
    emit_table,
    get_state,
    stderr,
)

__all__ = ["compromise_report", "compromise_version", "revoke"]

KEY_ARG = typer.Argument(..., help="Key id, namespace:name, or name (namespace default).")


def revoke(
    ctx: typer.Context,
    namespace: str | None = typer.Option(None, "--namespace", help="Keys in this namespace."),
    created_by: str | None = typer.Option(None, "--created-by", help="Keys made by this "
                                          "principal."),
    algorithm: str | None = typer.Option(None, "--algorithm", help="Keys of this algorithm."),
    created_before: str | None = typer.Option(None, "--created-before",
                                              help="Keys created before (RFC 3339)."),
    reason: str | None = typer.Option(None, "--reason", help="Why (required to revoke)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the matching keys."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Mark every key matching a query compromised (at least one filter; irreversible)."""
    state = get_state(ctx)
    if all(v is None for v in (namespace, created_by, algorithm, created_before)):
        stderr("error: usage: give at least one filter: --namespace, --created-by, "
               "--algorithm or --created-before")
        raise typer.Exit(2)
    if not dry_run and not reason:
        stderr("error: usage: --reason is required (or --dry-run)")
        raise typer.Exit(2)
    if not dry_run:
        confirm(yes, "Mark every matching key compromised? This cannot be undone",
                "marking keys compromised cannot be undone (see them with --dry-run first)")
    with state.client() as kk:
        result = kk.bulk_revoke(namespace=namespace, created_by=created_by,
                                algorithm=algorithm, created_before=created_before,
                                reason=reason, dry_run=dry_run)
    if state.json:
        emit_json(result)
    else:
        more = " (list truncated)" if result.truncated else ""
        if result.dry_run:
            typer.echo(f"{result.matched} key(s) match{more}:")
        else:
            typer.echo(f"revoked {result.revoked} of {result.matched} key(s), "
                       f"{result.failed} failed{more}")
        for ref in result.keys:
            typer.echo(f"  {ref}")
        for e in result.errors:
            typer.echo(f"  failed: {e.key}: {e.code}: {e.detail}")
    if result.failed:
        raise typer.Exit(1)


def compromise_version(
    ctx: typer.Context, key: str = KEY_ARG,
    version: int = typer.Argument(..., min=1, help="The version."),
    reason: str = typer.Option(..., "--reason", help="Why."),
    compromise_time: str | None = typer.Option(
        None, "--compromise-time", help="When it happened (RFC 3339; default now)."),
) -> None:
    """Mark one version compromised: it refuses protect operations at once."""
    state = get_state(ctx)
    with state.client() as kk:
        v = kk.compromise_version(key, version, reason, compromise_time=compromise_time)
    if state.json:
        emit_json(v)
    else:
        emit_fields([("key", v.key), ("version", v.version), ("state", v.state),
                     ("compromised at", v.compromised_at), ("reason", v.compromise_reason)])
        with state.client() as kk:
            primary = kk.get_key(v.key_id).primary_version
        if primary == v.version:
            stderr(f"note: version {v.version} is the primary version: the key cannot "
                   f"encrypt, sign or MAC until you rotate it (keykeeper key rotate {v.key})")


def compromise_report(
    ctx: typer.Context, key: str = KEY_ARG,
    version: int | None = typer.Option(None, "--version", min=1, help="Only this version."),
) -> None:
    """Who used the key (or version), how often, first and last use, from where; uses
    after the compromise time are flagged."""
    state = get_state(ctx)
    with state.client() as kk:
        r = kk.compromise_report(key, version=version)
    if state.json:
        emit_json(r)
        return
    t = r.totals
    emit_fields([("key", f"{r.key} ({r.key_id})"), ("version", r.version or "all"),
                 ("compromise time", r.compromise_time), ("reason", r.compromise_reason),
                 ("operations", t.operations), ("failures", t.failures),
                 ("principals", t.principals), ("first use", t.first_use),
                 ("last use", t.last_use),
                 ("uses after compromise", t.uses_after_compromise)])
    typer.echo("")
    rows: list[list[Any]] = [
        [p.principal, p.operations, p.failures,
         ", ".join(f"{k}={n}" for k, n in sorted(p.by_operation.items())),
         p.first_use, p.last_use, ", ".join(p.sources) or None,
         p.uses_after_compromise or None] for p in r.principals]
    emit_table(["principal", "operations", "failures", "by operation", "first use",
                "last use", "sources", "after compromise"], rows)
    if r.uses_after_compromise:
        typer.echo("")
        typer.echo("uses after the compromise time" + (" (truncated)" if r.truncated else ""))
        emit_table(["time", "principal", "operation", "outcome", "source", "version"],
                   ([u.get("time"), u.get("principal"), u.get("operation"), u.get("outcome"),
                     u.get("source"), u.get("key_version")] for u in r.uses_after_compromise))
