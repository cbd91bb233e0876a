"""``keykeeper role ...``, ``keykeeper grant ...`` and ``keykeeper policy sod ...``: what
principals may do. Changes wait for dual control by default: they print one ``approval
required`` line and exit with status 4 (cli/main.py)."""

from __future__ import annotations

from typing import Any

import typer

from keykeeper.cli._state import emit_fields, emit_json, emit_table, get_state, parse_pairs
from keykeeper.cli.principal_cmds import split_list
from keykeeper.client import Grant, Role

__all__ = ["grant_app", "role_app", "sod_app"]

role_app = typer.Typer(no_args_is_help=True)
grant_app = typer.Typer(no_args_is_help=True)
sod_app = typer.Typer(no_args_is_help=True)

ROLE_ARG = typer.Argument(..., help="Role name.")
GRANT_ARG = typer.Argument(..., help="Grant id (g-...).")
OPS_HELP = ("Operation names or patterns, comma-separated or repeated: encrypt, decrypt, "
            "key.rotate, key.*, * (docs/access-control.md lists them).")


def _role_rows(r: Role) -> list[tuple[str, Any]]:
    return [("name", r.name), ("description", r.description or None),
            ("operations", ", ".join(r.operations)), ("builtin", r.builtin),
            ("created", r.created_at), ("updated", r.updated_at)]


def _emit_role(ctx: typer.Context, r: Role) -> None:
    if get_state(ctx).json:
        emit_json(r)
    else:
        emit_fields(_role_rows(r))


def _grant_rows(g: Grant) -> list[tuple[str, Any]]:
    return [("id", g.id), ("grantee", g.grantee), ("operations", ", ".join(g.operations)),
            ("namespace", g.namespace), ("key pattern", g.key_pattern), ("labels", g.labels),
            ("condition", g.condition), ("created by", g.created_by),
            ("created", g.created_at)]


def _emit_grant(ctx: typer.Context, g: Grant) -> None:
    if get_state(ctx).json:
        emit_json(g)
    else:
        emit_fields(_grant_rows(g))


# -- roles -------------------------------------------------------------------------------------
@role_app.command("create")
def role_create(ctx: typer.Context, name: str = ROLE_ARG,
                operations: list[str] = typer.Option(..., "--operations", help=OPS_HELP),
                description: str | None = typer.Option(None, "--description")) -> None:
    """Create a role."""
    with get_state(ctx).client() as kk:
        _emit_role(ctx, kk.create_role(name, split_list(operations) or [],
                                       description=description))


@role_app.command("list")
def role_list(ctx: typer.Context) -> None:
    """List roles."""
    state = get_state(ctx)
    with state.client() as kk:
        found = kk.list_roles()
    if state.json:
        emit_json({"roles": found})
        return
    emit_table(["name", "builtin", "operations", "description"],
               ((r.name, r.builtin, ", ".join(r.operations), r.description or "-")
                for r in found))


@role_app.command("show")
def role_show(ctx: typer.Context, name: str = ROLE_ARG) -> None:
    """Show one role."""
    with get_state(ctx).client() as kk:
        _emit_role(ctx, kk.get_role(name))


@role_app.command("update")
def role_update(ctx: typer.Context, name: str = ROLE_ARG,
                operations: list[str] | None = typer.Option(
                    None, "--operations", help="Replace the operations. " + OPS_HELP),
                description: str | None = typer.Option(None, "--description")) -> None:
    """Change a role's operations and/or description (built-in roles too)."""
    if operations is None and description is None:
        raise typer.BadParameter("nothing to change", param_hint="--operations/--description")
    with get_state(ctx).client() as kk:
        _emit_role(ctx, kk.update_role(name, operations=split_list(operations),
                                       description=description))


@role_app.command("delete")
def role_delete(ctx: typer.Context, name: str = ROLE_ARG) -> None:
    """Delete a role nobody holds (and the grants made to it); built-in roles stay."""
    state = get_state(ctx)
    with state.client() as kk:
        gone = kk.delete_role(name)
    if state.json:
        emit_json(gone)
    else:
        typer.echo(f"deleted role {gone.name} ({gone.grants_deleted} grant(s) deleted)")


# -- grants ------------------------------------------------------------------------------------
def _grantee(role: str | None, principal: str | None, required: bool) -> str | None:
    if role is not None and principal is not None:
        raise typer.BadParameter("give --role or --principal, not both", param_hint="--role")
    if role is None and principal is None:
        if required:
            raise typer.BadParameter("give --role or --principal", param_hint="--role")
        return None
    return f"role:{role}" if role is not None else f"principal:{principal}"


@grant_app.command("create")
def grant_create(
    ctx: typer.Context,
    role: str | None = typer.Option(None, "--role", help="Grant to this role..."),
    principal: str | None = typer.Option(None, "--principal", help="...or to this principal."),
    operations: list[str] = typer.Option(..., "--operations", help=OPS_HELP),
    namespace: str | None = typer.Option(None, "--namespace", "-n",
                                         help="Namespace, or * [default: *]."),
    key_pattern: str | None = typer.Option(None, "--key-pattern",
                                           help="Glob over key names, e.g. 'card-*'."),
    label: list[str] | None = typer.Option(None, "--label", help="k=v the key must carry; "
                                           "repeatable."),
    condition: str | None = typer.Option(
        None, "--condition",
        help="On the encryption context, e.g. 'context.tenant == principal.metadata.tenant'."),
) -> None:
    """Grant key operations on a scope of keys to a role or a principal."""
    grantee = _grantee(role, principal, required=True)
    assert grantee is not None
    with get_state(ctx).client() as kk:
        _emit_grant(ctx, kk.create_grant(grantee, split_list(operations) or [],
                                         namespace=namespace, key_pattern=key_pattern,
                                         labels=parse_pairs(label, "--label"),
                                         condition=condition))


@grant_app.command("list")
def grant_list(
    ctx: typer.Context,
    role: str | None = typer.Option(None, "--role", help="Only grants to this role."),
    principal: str | None = typer.Option(None, "--principal",
                                         help="Only grants to this principal."),
    namespace: str | None = typer.Option(None, "--namespace", "-n"),
) -> None:
    """List grants."""
    state = get_state(ctx)
    with state.client() as kk:
        found = kk.list_grants(grantee=_grantee(role, principal, required=False),
                               namespace=namespace)
    if state.json:
        emit_json({"grants": found})
        return
    emit_table(["id", "grantee", "operations", "namespace", "key pattern", "labels",
                "condition"],
               ((g.id, g.grantee, ", ".join(g.operations), g.namespace, g.key_pattern,
                 g.labels, g.condition) for g in found))


@grant_app.command("show")
def grant_show(ctx: typer.Context, grant_id: str = GRANT_ARG) -> None:
    """Show one grant."""
    with get_state(ctx).client() as kk:
        _emit_grant(ctx, kk.get_grant(grant_id))


@grant_app.command("delete")
def grant_delete(ctx: typer.Context, grant_id: str = GRANT_ARG) -> None:
    """Delete a grant."""
    state = get_state(ctx)
    with state.client() as kk:
        gone = kk.delete_grant(grant_id)
    if state.json:
        emit_json(gone)
    else:
        typer.echo(f"deleted grant {gone.id}")


# -- separation of duties ----------------------------------------------------------------------
def _emit_sod(ctx: typer.Context, conflicts: list[tuple[str, str]]) -> None:
    if get_state(ctx).json:
        emit_json({"conflicts": [list(c) for c in conflicts]})
    elif conflicts:
        emit_table(["role", "conflicts with"], conflicts)
    else:
        typer.echo("no conflicting roles")


@sod_app.command("show")
def sod_show(ctx: typer.Context) -> None:
    """The role pairs nobody may hold together."""
    with get_state(ctx).client() as kk:
        _emit_sod(ctx, kk.get_sod_policy())


@sod_app.command("set")
def sod_set(
    ctx: typer.Context,
    pairs: list[str] | None = typer.Argument(
        None, help="Conflicting pairs as ROLE:ROLE, e.g. crypto-officer:auditor."),
    clear: bool = typer.Option(False, "--clear", help="Allow any combination of roles."),
) -> None:
    """Replace the separation-of-duties policy (refused while a principal violates it)."""
    if bool(pairs) == clear:
        raise typer.BadParameter("give ROLE:ROLE pairs, or --clear", param_hint="PAIRS")
    conflicts: list[tuple[str, str]] = []
    for pair in pairs or []:
        a, sep, b = pair.partition(":")
        if not sep or not a or not b:
            raise typer.BadParameter(f"expected ROLE:ROLE, got {pair!r}", param_hint="PAIRS")
        conflicts.append((a, b))
    with get_state(ctx).client() as kk:
        _emit_sod(ctx, kk.set_sod_policy(conflicts))
