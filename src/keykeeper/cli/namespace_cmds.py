"""``keykeeper namespace ...``: create, list, show, update and delete namespaces."""

from __future__ import annotations

import sys
from typing import Any

import typer

from keykeeper.cli._state import emit_fields, emit_json, emit_table, get_state, stderr
from keykeeper.client import Namespace

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

NAME_ARG = typer.Argument(..., help="Namespace name.")


def _rate(value: float | None) -> str | None:
    return None if value is None else f"{value:g}/s"


def _emit(ctx: typer.Context, n: Namespace) -> None:
    if get_state(ctx).json:
        emit_json(n)
        return
    rows: list[tuple[str, Any]] = [
        ("name", n.name),
        ("description", n.description or None),
        ("allow legacy RSA-2048", n.allow_legacy_rsa_2048),
        ("rate limit", _rate(n.rate_limit)),
        ("keys", n.keys),
        ("created by", n.created_by or None),
        ("created", n.created_at),
    ]
    emit_fields(rows)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = NAME_ARG,
    description: str | None = typer.Option(None, "--description"),
    allow_legacy_rsa_2048: bool = typer.Option(
        False, "--allow-legacy-rsa-2048", help="Allow RSA-2048 keys here (legacy clients)."),
    rate_limit: float | None = typer.Option(
        None, "--rate-limit", min=0.001, help="Requests per second, all callers together."),
) -> None:
    """Create a namespace with its own key-encryption key."""
    with get_state(ctx).client() as kk:
        _emit(ctx, kk.create_namespace(name, description=description,
                                       allow_legacy_rsa_2048=allow_legacy_rsa_2048 or None,
                                       rate_limit=rate_limit))


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List namespaces (deleted ones are not listed)."""
    state = get_state(ctx)
    with state.client() as kk:
        found = kk.list_namespaces()
    if state.json:
        emit_json({"namespaces": found})
        return
    emit_table(["name", "legacy rsa-2048", "rate limit", "created", "description"],
               ((n.name, n.allow_legacy_rsa_2048, _rate(n.rate_limit), n.created_at,
                 n.description or None) for n in found))


@app.command("show")
def show(ctx: typer.Context, name: str = NAME_ARG) -> None:
    """Show one namespace."""
    with get_state(ctx).client() as kk:
        _emit(ctx, kk.get_namespace(name))


@app.command("update")
def update(
    ctx: typer.Context,
    name: str = NAME_ARG,
    description: str | None = typer.Option(None, "--description"),
    allow_legacy_rsa_2048: bool | None = typer.Option(
        None, "--allow-legacy-rsa-2048/--no-allow-legacy-rsa-2048"),
    rate_limit: float | None = typer.Option(None, "--rate-limit", min=0.001,
                                            help="Requests per second."),
    no_rate_limit: bool = typer.Option(False, "--no-rate-limit", help="Remove the limit."),
) -> None:
    """Change a namespace's description, legacy RSA-2048 policy or rate limit."""
    if rate_limit is not None and no_rate_limit:
        raise typer.BadParameter("--rate-limit with --no-rate-limit", param_hint="--rate-limit")
    if description is None and allow_legacy_rsa_2048 is None and rate_limit is None \
            and not no_rate_limit:
        raise typer.BadParameter("nothing to change", param_hint="--description/--rate-limit")
    kwargs: dict[str, Any] = {}
    if rate_limit is not None or no_rate_limit:
        kwargs["rate_limit"] = rate_limit
    with get_state(ctx).client() as kk:
        _emit(ctx, kk.update_namespace(name, description=description,
                                       allow_legacy_rsa_2048=allow_legacy_rsa_2048, **kwargs))


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = NAME_ARG,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a namespace: crypto-erase its KEK and every key in it (cannot be undone;
    under dual control, this files a request that key custodians approve)."""
    if not yes:
        if not sys.stdin.isatty():
            stderr("error: usage: deleting a namespace cannot be undone; add --yes to confirm")
            raise typer.Exit(2)
        typer.confirm(f"Delete namespace {name}? Every key in it is destroyed and data they "
                      "encrypted becomes unrecoverable", abort=True, err=True)
    state = get_state(ctx)
    with state.client() as kk:
        erased = kk.delete_namespace(name)
    if state.json:
        emit_json(erased)
    else:
        emit_fields([("name", erased.name), ("deleted", erased.deleted_at),
                     ("keys destroyed", erased.keys_destroyed),
                     ("versions destroyed", erased.versions_destroyed)])
