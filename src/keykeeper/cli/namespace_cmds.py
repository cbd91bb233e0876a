"""``keykeeper namespace ...``: create, list, show, update and delete namespaces."""

from __future__ import annotations

from typing import Any

import typer

from keykeeper.cli._state import (
    confirm,
    emit_fields,
    emit_json,
    emit_table,
    get_state,
    option_value,
)
from keykeeper.client import Namespace

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

NAME_ARG = typer.Argument(..., help="Namespace name.")


def _rate(value: float | None) -> str | None:
    return None if value is None else f"{value:g}/s"


def _seconds(value: int | None) -> str | None:
    if value is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}s"


_ROTATION_HELP = "Default rotation period of keys created here, e.g. 90d (at least 1h)."
_OUP_HELP = "Default originator usage period of its keys (may protect), e.g. 730d."
_RUP_HELP = "Default recipient usage period of its keys (may process), e.g. 1825d."


def _emit(ctx: typer.Context, n: Namespace) -> None:
    if get_state(ctx).json:
        emit_json(n)
        return
    rows: list[tuple[str, Any]] = [
        ("name", n.name),
        ("description", n.description or None),
        ("allow legacy RSA-2048", n.allow_legacy_rsa_2048),
        ("rate limit", _rate(n.rate_limit)),
        ("rotation period", _seconds(n.rotation_period)),
        ("originator usage period", _seconds(n.originator_usage_period)),
        ("recipient usage period", _seconds(n.recipient_usage_period)),
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
    rotation_period: str | None = typer.Option(None, "--rotation-period", help=_ROTATION_HELP),
    originator_usage_period: str | None = typer.Option(
        None, "--originator-usage-period", help=_OUP_HELP),
    recipient_usage_period: str | None = typer.Option(
        None, "--recipient-usage-period", help=_RUP_HELP),
) -> None:
    """Create a namespace with its own key-encryption key."""
    with get_state(ctx).client() as kk:
        _emit(ctx, kk.create_namespace(
            name, description=description,
            allow_legacy_rsa_2048=allow_legacy_rsa_2048 or None, rate_limit=rate_limit,
            rotation_period=option_value(rotation_period, "period", "--rotation-period"),
            originator_usage_period=option_value(originator_usage_period, "period",
                                                 "--originator-usage-period"),
            recipient_usage_period=option_value(recipient_usage_period, "period",
                                                "--recipient-usage-period")))


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
    rotation_period: str | None = typer.Option(
        None, "--rotation-period", help=_ROTATION_HELP + " 'none' removes it."),
    originator_usage_period: str | None = typer.Option(
        None, "--originator-usage-period", help=_OUP_HELP + " 'none' removes it."),
    recipient_usage_period: str | None = typer.Option(
        None, "--recipient-usage-period", help=_RUP_HELP + " 'none' removes it."),
) -> None:
    """Change a namespace's description, legacy RSA-2048 policy, rate limit or lifecycle
    defaults."""
    if rate_limit is not None and no_rate_limit:
        raise typer.BadParameter("--rate-limit with --no-rate-limit", param_hint="--rate-limit")
    kwargs: dict[str, Any] = {}
    if rate_limit is not None or no_rate_limit:
        kwargs["rate_limit"] = rate_limit
    for field, value in (("rotation_period", rotation_period),
                         ("originator_usage_period", originator_usage_period),
                         ("recipient_usage_period", recipient_usage_period)):
        if value is not None:
            kwargs[field] = option_value(value, "period", "--" + field.replace("_", "-"))
    if description is None and allow_legacy_rsa_2048 is None and not kwargs:
        raise typer.BadParameter("nothing to change", param_hint="--description/--rate-limit")
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
    confirm(yes, f"Delete namespace {name}? Every key in it is destroyed and data they "
            "encrypted becomes unrecoverable", "deleting a namespace cannot be undone")
    state = get_state(ctx)
    with state.client() as kk:
        erased = kk.delete_namespace(name)
    if state.json:
        emit_json(erased)
    else:
        emit_fields([("name", erased.name), ("deleted", erased.deleted_at),
                     ("keys destroyed", erased.keys_destroyed),
                     ("versions destroyed", erased.versions_destroyed)])
