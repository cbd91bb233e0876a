"""Unseal material on the command line, and ``rekey`` (init, update, status, cancel).

Secrets are read from a file, an environment variable, a pipe, or a hidden prompt; never
from an argument (it would land in the shell history and the process list).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from keykeeper.cli._state import emit_fields, emit_json, get_state, stderr
from keykeeper.client import RekeyStatus, RekeyUpdate

__all__ = ["SHARES_WARNING", "emit_shares", "implied_seal", "material", "read_secret",
           "register"]

SHARES_WARNING = (
    "WARNING: give each unseal share to a different person now, and store the root token "
    "somewhere safe. They are shown only once and cannot be recovered: {threshold} of the "
    "{shares} shares unseal the server."
)


def _read_file(path: Path, flag: str) -> str:
    # Only the line ending goes: a passphrase's own spaces are part of it (as at init).
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{path} is not UTF-8 text", param_hint=flag) from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}",
                                 param_hint=flag) from None
    if not value:
        raise typer.BadParameter(f"{path} is empty", param_hint=flag)
    return value


def read_secret(path: Path | None, flag: str, env: str, prompt: str) -> str:
    """From ``path``; else ``$env``; else a line of stdin (a hidden prompt on a terminal)."""
    if path is not None:
        return _read_file(path, flag)
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True, err=True))


def implied_seal(passphrase_file: Path | None, share_file: Path | None) -> str | None:
    """The seal type the caller's options name (a file or $KEYKEEPER_UNSEAL_PASSPHRASE),
    or None. The commands ask the server (``health().seal_type``) first and use this only
    when it does not say (before init), so a passphrase file given to a shamir server gets
    the CLI's own message (:func:`material`)."""
    if share_file is not None or os.environ.get("KEYKEEPER_UNSEAL_SHARE"):
        return "shamir"
    if passphrase_file is not None or os.environ.get("KEYKEEPER_UNSEAL_PASSPHRASE"):
        return "passphrase"
    return None


def material(seal_type: str | None, passphrase_file: Path | None,
             share_file: Path | None, progress: str = "") -> tuple[str | None, str | None]:
    """The current unseal material for ``seal_type`` as ``(passphrase, share)``: one of
    them, or neither (pkcs11)."""
    if seal_type == "shamir":
        if passphrase_file is not None:
            raise typer.BadParameter("the server is sealed with Shamir shares, not a "
                                     "passphrase: give one share with --share-file FILE, or "
                                     "leave both options out to be prompted for it",
                                     param_hint="--passphrase-file")
        return None, read_secret(share_file, "--share-file", "KEYKEEPER_UNSEAL_SHARE",
                                 f"Unseal share{progress}")
    if seal_type == "pkcs11":
        if passphrase_file is not None or share_file is not None:
            raise typer.BadParameter("the server is sealed by a PKCS#11 token: it takes no "
                                     "passphrase or share")
        return None, None
    if share_file is not None:
        raise typer.BadParameter("the server is sealed with a passphrase, not Shamir shares: "
                                 "give it with --passphrase-file FILE, or leave both options "
                                 "out to be prompted for it", param_hint="--share-file")
    return read_secret(passphrase_file, "--passphrase-file", "KEYKEEPER_UNSEAL_PASSPHRASE",
                       "Unseal passphrase"), None


def emit_shares(keys: list[str]) -> list[tuple[str, str]]:
    return [(f"unseal share {i}", k) for i, k in enumerate(keys, 1)]


rekey_app = typer.Typer(no_args_is_help=True, help="Change the seal type or its unseal "
                        "material (needs sys.rekey and the current material).")

_PASSPHRASE_FILE = typer.Option(None, "--passphrase-file", exists=True, dir_okay=False,
                                help="File holding the current passphrase.")
_SHARE_FILE = typer.Option(None, "--share-file", exists=True, dir_okay=False,
                           help="File holding one current share (base64).")


def _emit_status(ctx: typer.Context, st: RekeyStatus) -> None:
    if get_state(ctx).json:
        emit_json(st)
        return
    rows: list[tuple[str, object]] = [("started", st.started), ("seal type", st.seal_type)]
    if st.started:
        rows += [("nonce", st.nonce), ("new seal type", st.new_seal_type),
                 ("progress", f"{st.progress}/{st.required}" if st.required else
                  "no material needed (the server's PKCS#11 token): run rekey update "
                  "--nonce NONCE")]
        if st.new_shares:
            rows += [("new shares", st.new_shares), ("new threshold", st.new_threshold)]
    emit_fields(rows)


@rekey_app.command("init")
def rekey_init(
    ctx: typer.Context,
    seal: str | None = typer.Option(None, "--seal", help="passphrase | shamir | pkcs11 "
                                    "(default: the current type, new material)"),
    shares: int | None = typer.Option(None, "--shares", min=1, max=255),
    threshold: int | None = typer.Option(None, "--threshold", min=1, max=255),
    new_passphrase_file: Path | None = typer.Option(
        None, "--new-passphrase-file", exists=True, dir_okay=False,
        help="The new passphrase (passphrase seal); else one is generated."),
) -> None:
    """Start a rekey; prints the nonce each holder of current material passes to update."""
    new_passphrase = (_read_file(new_passphrase_file, "--new-passphrase-file")
                      if new_passphrase_file else None)
    with get_state(ctx).client() as kk:
        st = kk.rekey_init(seal, secret_shares=shares, secret_threshold=threshold,
                           passphrase=new_passphrase)
    _emit_status(ctx, st)


@rekey_app.command("update")
def rekey_update(
    ctx: typer.Context,
    nonce: str = typer.Option(..., "--nonce", help="The nonce rekey init printed."),
    passphrase_file: Path | None = _PASSPHRASE_FILE,
    share_file: Path | None = _SHARE_FILE,
) -> None:
    """Give the current material (prompted hidden by seal type); at the threshold prints
    the new material once."""
    with get_state(ctx).client() as kk:
        kind = kk.health().seal_type or implied_seal(passphrase_file, share_file)
        passphrase, share = material(kind, passphrase_file, share_file)
        r: RekeyUpdate = kk.rekey_update(nonce, passphrase=passphrase, key=share)
    if get_state(ctx).json:
        emit_json(r)
    elif not r.complete:
        emit_fields([("complete", False), ("progress", f"{r.progress}/{r.required}")])
    else:
        rows: list[tuple[str, object]] = [("complete", True), ("seal type", r.seal_type)]
        rows += emit_shares(r.keys)
        if r.unseal_passphrase:
            rows.append(("unseal passphrase", r.unseal_passphrase))
        emit_fields(rows)
    if r.complete and r.keys:
        stderr("WARNING: the new unseal shares are shown only once; the old material no "
               "longer unseals. Hand each share to a different person now.")
    elif r.complete and r.unseal_passphrase:
        stderr("WARNING: the new unseal passphrase is shown only once; the old material no "
               "longer unseals. Store it somewhere safe now.")


@rekey_app.command("status")
def rekey_status(ctx: typer.Context) -> None:
    """Show the rekey in progress, if any."""
    with get_state(ctx).client() as kk:
        _emit_status(ctx, kk.rekey_status())


@rekey_app.command("cancel")
def rekey_cancel(ctx: typer.Context) -> None:
    """Cancel the rekey in progress (the shares given to it are forgotten)."""
    with get_state(ctx).client() as kk:
        _emit_status(ctx, kk.rekey_cancel())


def register(app: typer.Typer) -> None:
    app.add_typer(rekey_app, name="rekey")
