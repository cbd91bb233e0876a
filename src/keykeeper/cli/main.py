"""The ``keykeeper`` command: typer app, global options, and the one error mapping.

Exit status: 0 success; 1 an error the server (or the SDK) reported, printed
as one line ``error: <code>: <detail>`` on stderr; 2 a usage error (click);
3 the server could not be reached; 4 accepted, waiting for approval; 141 stdout's reader
closed the pipe (``| head``: no message). No expected error prints a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
from enum import StrEnum
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from keykeeper import __version__
from keykeeper.cli import (
    alert_cmds,
    approval_cmds,
    audit_cmds,
    backup_cmds,
    crypto_cmds,
    devcert_cmds,
    file_cmds,
    key_cmds,
    kmip_cmds,
    namespace_cmds,
    principal_cmds,
    receipt_cmds,
    revoke_cmds,
    rewrap_cmds,
    role_cmds,
    scheduler_cmds,
    sys_cmds,
    transfer_cmds,
)
from keykeeper.cli._state import State
from keykeeper.client import ConnectionFailed
from keykeeper.errors import ApprovalRequired, KeykeeperError

__all__ = ["app", "main"]

EXIT_ERROR = 1
EXIT_CONNECTION = 3
EXIT_PENDING = 4  # accepted, waiting for dual-control approval
EXIT_BROKEN_PIPE = 141  # stdout's reader closed the pipe (128 + SIGPIPE)


class _ErrorMappingGroup(TyperGroup):
    """Maps keykeeper and I/O errors to one stderr line and an exit status, once."""

    def invoke(self, ctx: Any) -> Any:  # typer types it with its private click copy
        try:
            return super().invoke(ctx)
        except ConnectionFailed as exc:
            typer.echo(f"error: {exc.code}: {exc.detail}", err=True)
            raise typer.Exit(EXIT_CONNECTION) from None
        except ApprovalRequired as exc:
            approval_cmds.emit_pending(ctx, exc)
            raise typer.Exit(EXIT_PENDING) from None
        except KeykeeperError as exc:
            typer.echo(f"error: {exc.code}: {exc.detail}", err=True)
            raise typer.Exit(EXIT_ERROR) from None
        except BrokenPipeError:
            _quiet_broken_pipe()
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            typer.echo(f"error: io: {exc.strerror or exc}{where}", err=True)
            raise typer.Exit(EXIT_ERROR) from None


def _quiet_broken_pipe() -> NoReturn:
    """The reader went away (``keykeeper ... | head -2``): exit 141 (128 + SIGPIPE, what a
    shell reports for a command the signal ended) with no message, as most CLIs do.
    stdout now points at /dev/null so the interpreter's final flush cannot complain."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    sys.exit(EXIT_BROKEN_PIPE)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


app = typer.Typer(
    name="keykeeper",
    cls=_ErrorMappingGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="keykeeper: key management service, CLI over the REST API.",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"keykeeper {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    addr: str | None = typer.Option(
        None, "--addr", envvar="KEYKEEPER_ADDR", help="Server URL (default http://127.0.0.1:8200)."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="KEYKEEPER_TOKEN", help="Bearer token.", show_default=False
    ),
    output: OutputFormat = typer.Option(
        OutputFormat.table, "--format", help="table for people, json for scripts."
    ),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit."),
    ca_cert: str | None = typer.Option(
        None, "--ca-cert", envvar="KEYKEEPER_CACERT",
        help="CA file (or directory) that the server's certificate must chain to."),
    client_cert: str | None = typer.Option(
        None, "--client-cert", envvar="KEYKEEPER_CLIENT_CERT",
        help="Client certificate (PEM) for mTLS; may hold the key too."),
    client_key: str | None = typer.Option(
        None, "--client-key", envvar="KEYKEEPER_CLIENT_KEY",
        help="The client certificate's private key (PEM)."),
) -> None:
    if client_key and not client_cert:
        raise typer.BadParameter("--client-key needs --client-cert", param_hint="--client-key")
    state = ctx.ensure_object(State)
    state.ca_cert = ca_cert or state.ca_cert
    state.client_cert = client_cert or state.client_cert
    state.client_key = client_key or state.client_key
    state.addr = addr or state.addr
    state.token = token if token is not None else state.token
    state.output = output.value


sys_cmds.register(app)
app.add_typer(key_cmds.app, name="key", help="Create, list and manage keys.")
app.add_typer(audit_cmds.app, name="audit",
              help="Verify audit files (offline); search and tail audit records.")
app.add_typer(backup_cmds.app, name="backup",
              help="Encrypted backups: create, verify (offline), restore; the signing key.")
app.add_typer(namespace_cmds.app, name="namespace", help="Create, list and delete namespaces.")
app.add_typer(approval_cmds.app, name="approval",
              help="Dual control: list, show, approve and reject requests.")
app.add_typer(approval_cmds.policy_app, name="policy", help="Server policies.")
app.add_typer(principal_cmds.principal_app, name="principal",
              help="Create, list, change and delete principals.")
app.add_typer(principal_cmds.token_app, name="token",
              help="Create, list, renew and revoke tokens; whoami; revoke-root.")
app.add_typer(role_cmds.role_app, name="role", help="Create, list, change and delete roles.")
app.add_typer(role_cmds.grant_app, name="grant",
              help="Grant key operations on a scope of keys.")
approval_cmds.policy_app.add_typer(role_cmds.sod_app, name="sod",
                                   help="Separation of duties: role pairs nobody holds together.")
app.add_typer(alert_cmds.app, name="alerts",
              help="List and acknowledge alerts; key usage statistics.")
app.add_typer(kmip_cmds.app, name="kmip",
              help="KMIP tools: run the OASIS KMIP test cases against a KMIP server.")
app.add_typer(scheduler_cmds.app, name="scheduler",
              help="The lifecycle scheduler: this node's role, last runs, run a job now.")
crypto_cmds.register(app)
file_cmds.register(app)
key_cmds.app.add_typer(receipt_cmds.app, name="receipt",
                       help="Fetch and verify signed destruction receipts.")
key_cmds.app.command("revoke")(revoke_cmds.revoke)
key_cmds.app.command("compromise-version")(revoke_cmds.compromise_version)
key_cmds.app.command("compromise-report")(revoke_cmds.compromise_report)
key_cmds.app.command("import-params")(transfer_cmds.import_params)
key_cmds.app.command("import")(transfer_cmds.import_key)
key_cmds.app.command("export")(transfer_cmds.export_key)
# ``rewrap``: one ciphertext (crypto_cmds.rewrap) or a JSON Lines file of them.
app.command("rewrap")(rewrap_cmds.rewrap)
app.command("dev-certs")(devcert_cmds.dev_certs)


_GLOBAL_OPTIONS = ("--format", "--addr", "--token", "--ca-cert", "--client-cert",
                   "--client-key")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--format``, ``--addr``, ``--token`` and the TLS options (with their values)
    to the front, so they work after a subcommand too (``keykeeper key list --format
    json``), as Vault's CLI allows. Anything after ``--`` is left alone, and so is a
    ``--format`` naming a key-material format (``key import --format raw``)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name, eq, value = arg.partition("=")
        if not eq and i + 1 < len(argv):
            value = argv[i + 1]
        if name == "--format" and value in transfer_cmds.MATERIAL_FORMATS:
            rest.append(arg)  # ``key import --format raw``: the material's format stays
        elif name in _GLOBAL_OPTIONS:
            if "=" in arg:
                front.append(arg)
            else:
                front.extend(argv[i:i + 2])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    """Console-script entry point: usage errors are one line too (``error: usage: ...``)."""
    try:
        code = app(args=hoist_global_options(sys.argv[1:]), prog_name="keykeeper",
                   standalone_mode=False)
        sys.stdout.flush()  # a closed pipe shows here at the latest, not at shutdown
    except BrokenPipeError:
        _quiet_broken_pipe()
    except Exception as exc:
        # typer carries its own copy of click: match its usage errors by their interface.
        message = getattr(exc, "format_message", None)
        exit_code = getattr(exc, "exit_code", None)
        if callable(message) and isinstance(exit_code, int):
            text = message()
            if text:  # empty for "no arguments: help was shown"
                typer.echo(f"error: usage: {text} (see --help)", err=True)
            sys.exit(exit_code)
        if type(exc).__name__ == "Abort":
            typer.echo("error: aborted", err=True)
            sys.exit(EXIT_ERROR)
        raise
    sys.exit(code if isinstance(code, int) else 0)
