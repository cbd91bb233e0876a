"""``server``, ``init``, ``unseal``, ``seal``, ``status``."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from keykeeper.cli import seal_cmds
from keykeeper.cli._state import emit_fields, emit_json, get_state, stderr
from keykeeper.cli.seal_cmds import SHARES_WARNING, emit_shares, implied_seal, material
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
                ("seal type", health.seal_type),
                *([("unseal progress", f"{health.progress}/{health.threshold}")]
                  if health.threshold else []),
                # As Vault's "Unseal Nonce": names the attempt the shares given so far are in.
                *([("unseal nonce", health.nonce)]
                  if health.threshold and health.progress and health.nonce else []),
                *([("seal error", health.seal_error)] if health.seal_error else []),
            ]
        )


def server(
    dev: bool = typer.Option(
        False, "--dev", help="Dev server: initialised and unsealed, with a root token, in "
        "a temporary data directory removed at exit (unless --data-dir is given)."
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
    tls_cert: str | None = typer.Option(
        None, "--tls-cert", envvar="KEYKEEPER_TLS_CERT_FILE",
        help="Serve HTTPS with this certificate (PEM, chain leaf first); docs/tls.md."),
    tls_key: str | None = typer.Option(
        None, "--tls-key", envvar="KEYKEEPER_TLS_KEY_FILE",
        help="The certificate's private key (PEM, unencrypted, mode 0600)."),
    tls_client_ca: str | None = typer.Option(
        None, "--tls-client-ca", envvar="KEYKEEPER_TLS_CLIENT_CA_FILE",
        help="CA file that client certificates must chain to."),
    tls_client_auth: str | None = typer.Option(
        None, "--tls-client-auth", envvar="KEYKEEPER_TLS_CLIENT_AUTH",
        help="Client certificates: none | optional | required (default: optional with "
        "--tls-client-ca, else none)."),
    insecure_no_tls: bool = typer.Option(
        False, "--insecure-no-tls",
        help="Allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy)."),
    kmip_listen: str | None = typer.Option(
        None, "--kmip-listen", envvar="KEYKEEPER_KMIP_LISTEN",
        help="Also serve KMIP over mutual TLS on HOST:PORT (e.g. 0.0.0.0:5696; needs "
        "--tls-cert, --tls-key and --tls-client-ca, or KEYKEEPER_KMIP_TLS_*); docs/kmip.md."),
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
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_client_ca=tls_client_ca,
        tls_client_auth=tls_client_auth,
        insecure_no_tls=insecure_no_tls,
        kmip_listen=kmip_listen,
    )


def init(
    ctx: typer.Context,
    seal: str | None = typer.Option(None, "--seal", help="passphrase (default) | shamir | "
                                    "pkcs11 (the server's token)."),
    shares: int | None = typer.Option(None, "--shares", min=1, max=255,
                                      help="shamir: number of shares (5)."),
    threshold: int | None = typer.Option(None, "--threshold", min=1, max=255,
                                         help="shamir: shares needed to unseal (3)."),
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", exists=True, dir_okay=False, help="Unseal passphrase to use."
    ),
) -> None:
    """Initialize the server once; prints the root token and the unseal material once."""
    passphrase = _read_secret_file(passphrase_file) if passphrase_file else None
    with get_state(ctx).client() as kk:
        result = kk.init(passphrase, seal=seal, secret_shares=shares,
                         secret_threshold=threshold)
    if get_state(ctx).json:
        emit_json(result)
    else:
        rows: list[tuple[str, object]] = [("root token", result.root_token),
                                          ("seal type", result.seal_type)]
        if result.unseal_passphrase is not None:
            rows.append(("unseal passphrase", result.unseal_passphrase))
        rows += emit_shares(result.keys)
        emit_fields(rows)
    if result.keys:
        stderr(SHARES_WARNING.format(threshold=result.secret_threshold,
                                     shares=result.secret_shares))
    elif result.seal_type == "pkcs11":
        stderr("WARNING: store the root token somewhere safe now; it is shown only once. "
               "The server unseals itself with its PKCS#11 token.")
    else:
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
    share_file: Path | None = typer.Option(
        None, "--share-file", exists=True, dir_okay=False,
        help="shamir: file holding one share; else $KEYKEEPER_UNSEAL_SHARE; else stdin "
        "(a hidden prompt on a terminal)."),
    reset: bool = typer.Option(False, "--reset", help="shamir: forget the shares given."),
) -> None:
    """Unseal: the passphrase, or one share per run until the threshold (prompted hidden by
    the seal type); under pkcs11 retry the auto-unseal."""
    with get_state(ctx).client() as kk:
        if reset:
            health = kk.unseal(reset=True)
        else:
            # The server says what to prompt for (and which options fit); the options only
            # before init, when it cannot say.
            now = kk.health()
            kind = now.seal_type or implied_seal(passphrase_file, share_file)
            progress = (f" ({(now.progress or 0) + 1}/{now.threshold})"
                        if now.threshold else "")
            passphrase, share = material(kind, passphrase_file, share_file, progress)
            health = kk.unseal(passphrase, key=share)
    _emit_health(ctx, health, kk.addr)


def generate_root(
    ctx: typer.Context,
    passphrase_file: Path | None = typer.Option(
        None, "--passphrase-file", exists=True, dir_okay=False,
        help="File holding the unseal passphrase; else $KEYKEEPER_UNSEAL_PASSPHRASE; else "
        "stdin (a prompt on a terminal)."),
    share_file: Path | None = typer.Option(
        None, "--share-file", exists=True, dir_okay=False,
        help="shamir: file holding one share (run once per share holder)."),
    reset: bool = typer.Option(False, "--reset", help="shamir: forget the shares given."),
) -> None:
    """Recovery: a root token valid for one hour, for the holders of the unseal material
    (when no security officer or approver is left). Shown once; its use is audited."""
    with get_state(ctx).client() as kk:
        if reset:
            made = kk.generate_root(reset=True)
        else:
            kind = kk.health().seal_type or implied_seal(passphrase_file, share_file)
            passphrase, share = material(kind, passphrase_file, share_file)
            made = kk.generate_root(passphrase, key=share)
    if get_state(ctx).json:
        emit_json(made)
    elif made.root_token is None:
        emit_fields([("complete", False), ("progress", f"{made.progress}/{made.threshold}")])
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
    seal_cmds.register(app)
