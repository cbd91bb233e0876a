"""``server``, ``init``, ``unseal``, ``seal``, ``status``."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer

from keykeeper.cli._state import emit_fields, emit_json, get_state, stderr
from keykeeper.client import Health
from keykeeper.errors import Internal

__all__ = ["register"]

STORE_WARNING = (
    "WARNING: store the root token and the unseal passphrase somewhere safe now. "
    "They are shown only once and cannot be recovered."
)


def _read_secret_file(path: Path) -> str:
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{path} is not UTF-8 text",
                                 param_hint="--passphrase-file") from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}",
                                 param_hint="--passphrase-file") from None
    if not value:
        raise typer.BadParameter(f"{path} is empty", param_hint="--passphrase-file")
    return value


def _emit_health(ctx: typer.Context, health: Health, addr: str) -> None:
    if get_state(ctx).json:
        emit_json(health)
    else:
        emit_fields(
            [
                ("address", addr),
                ("initialized", health.initialized),
                ("sealed", health.sealed),
                ("version", health.version),
                ("status", health.status),
                ("scheduler", health.scheduler),
                ("node id", health.node_id),
            ]
        )


def server(
    dev: bool = typer.Option(
        False, "--dev", help="In-memory dev server, unsealed, with a root token."
    ),
    dev_root_token: str | None = typer.Option(
        None, "--dev-root-token", envvar="KEYKEEPER_DEV_ROOT_TOKEN", help="Root token for --dev."
    ),
    listen: str = typer.Option("127.0.0.1:8200", "--listen", envvar="KEYKEEPER_LISTEN"),
    data_dir: str | None = typer.Option(None, "--data-dir", envvar="KEYKEEPER_DATA_DIR"),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="KEYKEEPER_DATABASE_URL"
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Server worker processes."),
) -> None:
    """Run a keykeeper server (with --dev: initialised, unsealed, for development only)."""
    if dev_root_token is not None and not dev:
        raise typer.BadParameter("--dev-root-token needs --dev")
    try:
        config = importlib.import_module("keykeeper.config")
    except ImportError:
        raise Internal("the server is not available in this installation") from None
    config.run_server(
        listen=listen,
        data_dir=data_dir,
        database_url=database_url,
        dev=dev,
        dev_root_token=dev_root_token,
        workers=workers,
    )


def init(
    ctx: typer.Context,
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", exists=True, dir_okay=False, help="Unseal passphrase to use."
    ),
) -> None:
    """Initialize the server once; prints the root token and unseal passphrase."""
    passphrase = _read_secret_file(passphrase_file) if passphrase_file else None
    with get_state(ctx).client() as kk:
        result = kk.init(passphrase)
    if get_state(ctx).json:
        emit_json(result)
    else:
        emit_fields(
            [("root token", result.root_token), ("unseal passphrase", result.unseal_passphrase)]
        )
    stderr(STORE_WARNING)


def unseal(
    ctx: typer.Context,
    passphrase_file: Path | None = typer.Option(
        None,
        "--passphrase-file",
        exists=True,
        dir_okay=False,
        help="File holding the passphrase; else $KEYKEEPER_UNSEAL_PASSPHRASE; else stdin "
        "(a prompt on a terminal).",
    ),
) -> None:
    """Unseal the server with the passphrase (never echoed)."""
    passphrase = _passphrase(passphrase_file)
    with get_state(ctx).client() as kk:
        health = kk.unseal(passphrase)
    _emit_health(ctx, health, kk.addr)


def _passphrase(passphrase_file: Path | None) -> str:
    if passphrase_file is not None:
        return _read_secret_file(passphrase_file)
    if os.environ.get("KEYKEEPER_UNSEAL_PASSPHRASE"):
        return os.environ["KEYKEEPER_UNSEAL_PASSPHRASE"]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")  # piped: no prompt, no echo warning
    return str(typer.prompt("Unseal passphrase", hide_input=True, err=True))


def generate_root(
    ctx: typer.Context,
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", exists=True, dir_okay=False,
        help="File holding the unseal passphrase; else $KEYKEEPER_UNSEAL_PASSPHRASE; else "
        "stdin (a prompt on a terminal)."),
) -> None:
    """Recovery: a root token valid for one hour, for the holder of the unseal passphrase
    (when no security officer or approver is left). Shown once; its use is audited."""
    with get_state(ctx).client() as kk:
        made = kk.generate_root(_passphrase(passphrase_file))
    if get_state(ctx).json:
        emit_json({"root_token": made.root_token, "expires_in": made.expires_in})
    else:
        emit_fields([("root token", made.root_token), ("expires in", f"{made.expires_in} s")])


def seal(ctx: typer.Context) -> None:
    """Seal the server: it forgets the root key until unsealed again."""
    with get_state(ctx).client() as kk:
        _emit_health(ctx, kk.seal(), kk.addr)


def status(ctx: typer.Context) -> None:
    """Show whether the server is reachable, initialized and sealed."""
    with get_state(ctx).client() as kk:
        _emit_health(ctx, kk.health(), kk.addr)


def register(app: typer.Typer) -> None:
    app.command()(server)
    app.command()(init)
    app.command()(unseal)
    app.command("generate-root")(generate_root)
    app.command()(seal)
    app.command()(status)
