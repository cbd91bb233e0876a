"""``keykeeper principal ...`` and ``keykeeper token ...``: who may call, and with what.

A change that waits for dual control (roles, metadata, certificate subjects, a token for
another principal) prints one ``approval required`` line and exits with status 4
(cli/main.py). A token made after approval is fetched by its requester with
``keykeeper approval claim ID``."""

from __future__ import annotations

from typing import Any

import typer

from keykeeper.cli._state import (
    confirm,
    emit_fields,
    emit_json,
    emit_table,
    get_state,
    parse_pairs,
    stderr,
)
from keykeeper.client import NewToken, Principal, TokenInfo, WhoAmI
from keykeeper.client.subjects import broad_first_hint
from keykeeper.errors import ApprovalRequired

__all__ = ["emit_new_token", "principal_app", "split_list", "token_app"]

principal_app = typer.Typer(no_args_is_help=True)
token_app = typer.Typer(no_args_is_help=True)

NAME_ARG = typer.Argument(..., help="Principal name.")
ACCESSOR_ARG = typer.Argument(..., help="Token accessor (acc-...), as `token list` shows.")


def split_list(values: list[str] | None) -> list[str] | None:
    """``--role a,b --role c`` to ``["a", "b", "c"]``; None when not given."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def principal_rows(p: Principal) -> list[tuple[str, Any]]:
    return [("name", p.name), ("kind", p.kind), ("roles", ", ".join(p.roles) or None),
            ("metadata", p.metadata),
            ("certificate subjects", "; ".join(p.certificate_subjects) or None),
            ("rate limit", f"{p.rate_limit:g}/s" if p.rate_limit is not None else None),
            ("disabled", p.disabled), ("created by", p.created_by),
            ("created", p.created_at), ("updated", p.updated_at)]


def emit_principal(ctx: typer.Context, p: Principal) -> None:
    if get_state(ctx).json:
        emit_json(p)
    else:
        emit_fields(principal_rows(p))


# -- principals --------------------------------------------------------------------------------
@principal_app.command("create")
def create(
    ctx: typer.Context,
    name: str = NAME_ARG,
    kind: str = typer.Option("service", "--kind", help="person | service"),
    role: list[str] | None = typer.Option(None, "--role", help="Role, repeatable or a,b."),
    metadata: list[str] | None = typer.Option(
        None, "--metadata", help="k=v, repeatable (grant conditions read these)."),
    cert_subject: list[str] | None = typer.Option(
        None, "--cert-subject",
        help="Client-certificate subject: an RFC 4514 DN, most specific RDN first "
        "(CN=app,O=Example), or DNS:, URI:, email:, IP: followed by a value; repeatable."),
    rate_limit: float | None = typer.Option(None, "--rate-limit", min=0.001,
                                            help="Requests per second."),
) -> None:
    """Create a principal (assigning roles waits for approval under dual control)."""
    _warn_broad_first(cert_subject)
    with get_state(ctx).client() as kk:
        p = kk.create_principal(name, kind=kind, roles=split_list(role),
                                metadata=parse_pairs(metadata, "--metadata"),
                                certificate_subjects=cert_subject, rate_limit=rate_limit)
    emit_principal(ctx, p)


@principal_app.command("list")
def list_(ctx: typer.Context,
          role: str | None = typer.Option(None, "--role", help="Only holders of this role.")
          ) -> None:
    """List principals."""
    state = get_state(ctx)
    with state.client() as kk:
        found = kk.list_principals(role=role)
    if state.json:
        emit_json({"principals": found})
        return
    emit_table(["name", "kind", "roles", "disabled", "created"],
               ((p.name, p.kind, ", ".join(p.roles) or "-", p.disabled, p.created_at)
                for p in found))


@principal_app.command("show")
def show(ctx: typer.Context, name: str = NAME_ARG) -> None:
    """Show one principal."""
    with get_state(ctx).client() as kk:
        emit_principal(ctx, kk.get_principal(name))


@principal_app.command("update")
def update(
    ctx: typer.Context,
    name: str = NAME_ARG,
    kind: str | None = typer.Option(None, "--kind", help="person | service"),
    role: list[str] | None = typer.Option(None, "--role",
                                          help="Replace the roles; repeatable or a,b."),
    clear_roles: bool = typer.Option(False, "--clear-roles", help="Remove every role."),
    metadata: list[str] | None = typer.Option(None, "--metadata",
                                              help="Replace the metadata; k=v, repeatable."),
    clear_metadata: bool = typer.Option(False, "--clear-metadata"),
    cert_subject: list[str] | None = typer.Option(
        None, "--cert-subject", help="Replace the certificate subjects; repeatable."),
    clear_cert_subjects: bool = typer.Option(False, "--clear-cert-subjects"),
    rate_limit: float | None = typer.Option(None, "--rate-limit", min=0.001,
                                            help="Requests per second."),
    clear_rate_limit: bool = typer.Option(False, "--clear-rate-limit",
                                          help="Use the server's default limit."),
    disabled: bool | None = typer.Option(None, "--disable/--enable",
                                         help="Refuse (or accept again) its credentials."),
) -> None:
    """Change a principal: each option given replaces that field."""
    roles = split_list(role)
    meta = parse_pairs(metadata, "--metadata")
    for flag, given, clear in (("--role", roles, clear_roles), ("--metadata", meta,
                                                                 clear_metadata),
                               ("--cert-subject", cert_subject, clear_cert_subjects),
                               ("--rate-limit", rate_limit, clear_rate_limit)):
        if given is not None and clear:
            raise typer.BadParameter(f"{flag} with its --clear option", param_hint=flag)
    kwargs: dict[str, Any] = {
        "kind": kind, "roles": [] if clear_roles else roles,
        "metadata": {} if clear_metadata else meta,
        "certificate_subjects": [] if clear_cert_subjects else cert_subject,
        "disabled": disabled}
    if rate_limit is not None or clear_rate_limit:
        kwargs["rate_limit"] = None if clear_rate_limit else rate_limit
    if all(v is None for v in kwargs.values()) and "rate_limit" not in kwargs:
        raise typer.BadParameter("nothing to change", param_hint="options")
    _warn_broad_first(cert_subject)
    with get_state(ctx).client() as kk:
        emit_principal(ctx, kk.update_principal(name, **kwargs))


def _warn_broad_first(subjects: list[str] | None) -> None:
    """One warning line (stderr) per DN written least specific RDN first: it is kept as
    given, and matches only a certificate whose subject is encoded in that order."""
    for subject in subjects or ():
        hint = broad_first_hint(subject)
        if hint is not None:
            typer.echo(f"warning: certificate subject {subject!r} is written least specific "
                       f"RDN first; a certificate's subject usually reads {hint!r} (kept as "
                       "given: it matches only a certificate encoded in this order)",
                       err=True)


@principal_app.command("delete")
def delete(ctx: typer.Context, name: str = NAME_ARG,
           yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
           ) -> None:
    """Delete a principal: its tokens are revoked and its grants deleted."""
    confirm(yes, f"Delete principal {name}, revoke its tokens and delete its grants?",
            "deleting a principal revokes its tokens")
    state = get_state(ctx)
    with state.client() as kk:
        gone = kk.delete_principal(name)
    if state.json:
        emit_json(gone)
    else:
        typer.echo(f"deleted principal {gone.name} ({gone.tokens_revoked} token(s) revoked, "
                   f"{gone.grants_deleted} grant(s) deleted)")


# -- tokens ------------------------------------------------------------------------------------
def token_rows(t: TokenInfo) -> list[tuple[str, Any]]:
    return [("accessor", t.accessor), ("principal", t.principal), ("state", t.state),
            ("display name", t.display_name or None), ("created by", t.created_by),
            ("created", t.created_at), ("expires", t.expires_at or "never"),
            ("revoked", t.revoked_at)]


def emit_token(ctx: typer.Context, t: TokenInfo) -> None:
    if get_state(ctx).json:
        emit_json(t)
    else:
        emit_fields(token_rows(t))


def emit_new_token(ctx: typer.Context, made: NewToken) -> None:
    """Print a token's secret, this once, with its accessor and expiry."""
    if get_state(ctx).json:
        emit_json({"token": made.token, "accessor": made.accessor,
                   "principal": made.principal, "display_name": made.display_name,
                   "expires_at": made.expires_at, "ttl": made.ttl})
        return
    emit_fields([("token", made.token), ("accessor", made.accessor),
                 ("principal", made.principal), ("display name", made.display_name or None),
                 ("expires", made.expires_at)])
    stderr("(the token is shown only now: store it safely; the accessor names it later)")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    principal: str = typer.Argument(..., help="The principal the token acts as."),
    ttl: str | None = typer.Option(None, "--ttl",
                                   help="Seconds, or e.g. 12h, 30d [default: 30d]."),
    display_name: str | None = typer.Option(None, "--display-name",
                                            help="A label, e.g. 'ci runner'."),
) -> None:
    """Create a token (for yourself: no permission needed; for another principal: waits
    for approval, then `keykeeper approval claim ID`). The secret is shown this once."""
    state = get_state(ctx)
    with state.client() as kk:
        try:
            made: NewToken = kk.create_token(principal, ttl=int(ttl) if ttl and ttl.isdigit()
                                             else ttl, display_name=display_name)
        except ApprovalRequired as exc:
            raise ApprovalRequired(
                f"{exc.detail}; once approved, claim the token with: keykeeper approval "
                f"claim {exc.approval_id}", approval_id=exc.approval_id) from None
    emit_new_token(ctx, made)


@token_app.command("list")
def token_list(ctx: typer.Context,
               principal: str | None = typer.Option(
                   None, "--principal", help="Whose tokens [default: your own].")) -> None:
    """List tokens (never their secrets)."""
    state = get_state(ctx)
    with state.client() as kk:
        found = kk.list_tokens(principal)
    if state.json:
        emit_json({"tokens": found})
        return
    emit_table(["accessor", "principal", "state", "display name", "expires"],
               ((t.accessor, t.principal, t.state, t.display_name or "-",
                 t.expires_at or "never") for t in found))


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, accessor: str = ACCESSOR_ARG) -> None:
    """Revoke a token at once."""
    with get_state(ctx).client() as kk:
        emit_token(ctx, kk.revoke_token(accessor))


@token_app.command("renew")
def token_renew(ctx: typer.Context, accessor: str = ACCESSOR_ARG) -> None:
    """Extend a token's expiry to now + its ttl (up to its maximum lifetime)."""
    with get_state(ctx).client() as kk:
        emit_token(ctx, kk.renew_token(accessor))


@token_app.command("revoke-root")
def token_revoke_root(
    ctx: typer.Context,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Revoke every root token (the init break-glass credential). Needs an enabled
    security officer and, for every rule of the approval policy, enough approvers."""
    confirm(yes, "Revoke every root token? Only principals' tokens will work afterwards",
            "revoking the root token cannot be undone")
    state = get_state(ctx)
    with state.client() as kk:
        count = kk.revoke_root_tokens()
    if state.json:
        emit_json({"revoked": count})
    else:
        typer.echo(f"revoked {count} root token(s)")


@token_app.command("whoami")
def whoami(ctx: typer.Context) -> None:
    """Who the current token belongs to, its roles and its expiry."""
    state = get_state(ctx)
    with state.client() as kk:
        me: WhoAmI = kk.lookup_self()
    if state.json:
        emit_json(me)
        return
    emit_fields([("principal", me.principal), ("kind", me.kind),
                 ("roles", ", ".join(me.roles) or ("(all: break-glass root)"
                                                    if me.principal == "root" else None)),
                 ("metadata", me.metadata), ("accessor", me.accessor),
                 ("display name", me.display_name or None),
                 ("expires", me.expires_at or "never")])
