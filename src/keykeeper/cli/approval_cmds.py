"""``keykeeper approval ...`` (dual control) and ``keykeeper policy approval ...``.

``keykeeper approval claim ID`` prints, once, the token an approved ``token.create``
request made for another principal (the requester only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import typer

from keykeeper.cli._state import (
    State,
    emit_fields,
    emit_json,
    emit_table,
    get_state,
    read_input,
    stderr,
)
from keykeeper.cli.principal_cmds import emit_new_token
from keykeeper.client import Approval, ApprovalPolicy, ApprovalRule
from keykeeper.errors import KeykeeperError, error_for_code

__all__ = ["app", "policy_app"]

app = typer.Typer(no_args_is_help=True)
policy_app = typer.Typer(no_args_is_help=True)
_approval_policy = typer.Typer(no_args_is_help=True)
policy_app.add_typer(_approval_policy, name="approval",
                     help="The dual-control policy: which operations wait for approval.")

ID_ARG = typer.Argument(..., help="Approval request id (ap-...).")


def approval_rows(a: Approval) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("id", a.id),
        ("operation", a.operation),
        ("summary", a.summary or None),
        ("requester", a.requester),
        ("state", a.state),
        ("approvals", f"{a.approvals} of {a.required}"),
        ("approver roles", ", ".join(a.approver_roles)),
        ("namespace", a.namespace),
        ("key", a.key_id),
        ("arguments", json.dumps(a.arguments, sort_keys=True)),
        ("created", a.created_at),
        ("expires", a.expires_at),
        ("decided", a.decided_at),
    ]
    for v in a.votes:
        note = f" ({v.comment})" if v.comment else ""
        rows.append((f"vote {v.principal}", f"{v.decision} at {_cell_time(v.at)}{note}"))
    if a.result is not None:
        rows.append(("result", json.dumps(a.result, sort_keys=True)))
        if a.result.get("claim") == "available":
            rows.append(("claim", f"the requester runs: keykeeper approval claim {a.id}"))
    if a.error is not None:
        rows.append(("error", f"{a.error.code}: {a.error.detail}"))
    return rows


def _cell_time(value: Any) -> str:
    return str(msgspec.to_builtins(value))


def _emit(ctx: typer.Context, a: Approval) -> None:
    if get_state(ctx).json:
        emit_json(a)
    else:
        emit_fields(approval_rows(a))


@app.command("list")
def list_(
    ctx: typer.Context,
    state_: str | None = typer.Option(
        None, "--state", help="pending | executing | executed | failed | rejected | expired"),
    requester: str | None = typer.Option(None, "--requester", help="Only this requester."),
) -> None:
    """List approval requests, newest first (without approval.list: your own)."""
    state = get_state(ctx)
    with state.client() as kk:
        found = list(kk.iter_approvals(state=state_, requester=requester))
    if state.json:
        emit_json({"approvals": found})
        return
    emit_table(
        ["id", "operation", "requester", "state", "approvals", "expires", "summary"],
        ((a.id, a.operation, a.requester, a.state, f"{a.approvals}/{a.required}",
          a.expires_at, a.summary) for a in found))


@app.command("show")
def show(ctx: typer.Context, approval_id: str = ID_ARG) -> None:
    """Show one approval request, its votes and, once run, its result."""
    with get_state(ctx).client() as kk:
        _emit(ctx, kk.get_approval(approval_id))


def _decided(ctx: typer.Context, a: Approval) -> None:
    _emit(ctx, a)
    if a.state == "failed" and a.error is not None:
        # The vote counted, but the approved operation failed: say so, as any error.
        raise error_for_code(a.error.code)(f"the approved operation failed: {a.error.detail}")


@app.command("approve")
def approve(
    ctx: typer.Context,
    approval_id: str = ID_ARG,
    comment: str | None = typer.Option(None, "--comment", "-m", help="Why (recorded)."),
) -> None:
    """Approve a request; the last approval needed runs the operation, as the requester."""
    with get_state(ctx).client() as kk:
        a = kk.approve(approval_id, comment)
    _decided(ctx, a)


@app.command("reject")
def reject(
    ctx: typer.Context,
    approval_id: str = ID_ARG,
    comment: str | None = typer.Option(None, "--comment", "-m", help="Why (recorded)."),
) -> None:
    """Reject a request (one rejection rejects it)."""
    with get_state(ctx).client() as kk:
        _emit(ctx, kk.reject(approval_id, comment))


@app.command("claim")
def claim(ctx: typer.Context, approval_id: str = ID_ARG) -> None:
    """Claim the token an approved request made for another principal: the requester
    only, once. The secret is shown this once."""
    with get_state(ctx).client() as kk:
        made = kk.claim_approval(approval_id)
    emit_new_token(ctx, made)


def _emit_policy(ctx: typer.Context, policy: ApprovalPolicy) -> None:
    if get_state(ctx).json:
        emit_json(policy)
        return
    emit_table(["rule", "required", "approver roles", "expiry", "operations"],
               ((n, r.required, ", ".join(r.approver_roles), f"{r.expiry_seconds}s",
                 ", ".join(r.operations)) for n, r in enumerate(policy.rules)))


@_approval_policy.command("show")
def policy_show(ctx: typer.Context) -> None:
    """Show the dual-control policy."""
    with get_state(ctx).client() as kk:
        _emit_policy(ctx, kk.get_approval_policy())


@_approval_policy.command("set")
def policy_set(
    ctx: typer.Context,
    path: Path | None = typer.Argument(
        None, help="JSON file {\"rules\": [...]} as `policy approval show --format json` "
        "prints it; - or nothing: stdin."),
) -> None:
    """Replace the dual-control policy (itself under dual control by default)."""
    raw = read_input(None, path, text_flag="FILE")
    try:
        policy = msgspec.json.decode(raw, type=ApprovalPolicy)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise typer.BadParameter(f"not an approval policy: {exc}", param_hint="FILE") from None
    rules: list[ApprovalRule] = policy.rules
    with get_state(ctx).client() as kk:
        _emit_policy(ctx, kk.set_approval_policy(rules))
    if not get_state(ctx).json:
        stderr("approval policy replaced")


def emit_pending(ctx: Any, exc: KeykeeperError) -> None:
    """A command that now waits for approval (exit status 4): one line on stderr naming
    the request; with --format json also ``{"approval_id", "state", "detail"}`` on stdout."""
    approval_id = getattr(exc, "approval_id", None)
    state = ctx.find_object(State) if ctx is not None else None
    if state is not None and state.json:
        emit_json({"approval_id": approval_id, "state": "pending", "detail": exc.detail})
    stderr(f"approval required: {exc.detail}; approvers run: keykeeper approval approve "
           f"{approval_id}")
