"""Starting a server process from the command line (``keykeeper server``): the checks made
before anything starts (listen addresses, TLS files, the KMIP address, settings), dev mode's
bootstrap and banner, and uvicorn with one or several workers. The settings and the
process's objects are keykeeper.config's (``Settings``, ``build``)."""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from keykeeper import __version__
from keykeeper.config import Settings, _on_off, backup_schedule_settings, build
from keykeeper.custody.hsm.token import HsmConfig
from keykeeper.errors import InvalidArgument, KeykeeperError
from keykeeper.kmip.server import (
    check_bindable,
    kmip_tls_context,
)
from keykeeper.service.monitoring import MonitorSettings
from keykeeper.store.engine import make_engine
from keykeeper.store.migrate import upgrade
from keykeeper.tls import TlsSettings, issuing_ca_file, server_context

__all__ = ["run_server"]

log = logging.getLogger("keykeeper")


def _parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"--listen must be HOST:PORT, got '{listen}'")
    return host or "127.0.0.1", int(port)


_TOKEN_NOTE = "(set at the first start of this data directory)"  # noqa: S105 (no secret)


def _dev_bootstrap(settings: Settings, root_token: str | None, addr: str,
                   cacert: Path | None = None) -> Path:
    """Initialise (first start) and return the file holding the dev unseal passphrase."""
    passphrase_file = settings.data_dir / "dev-unseal-passphrase"
    _, services = build(replace(settings, unseal_passphrase_file=None))
    token_note = root_token or _TOKEN_NOTE
    if not services.system.initialized():
        passphrase = secrets.token_urlsafe(32)
        result = services.system.init(passphrase, root_token=root_token)
        fd = os.open(passphrase_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(passphrase)  # dev mode stays on the passphrase seal
        token_note = result.root_token
    services.audit.close()  # frees the audit file slot for the server process
    services.deps.engine.dispose()
    bar = "=" * 72
    print(f"{bar}\nWARNING: keykeeper is running in DEVELOPMENT mode.\n"
          "  The unseal passphrase is stored in plain text in the data directory,\n"
          "  and the server unseals itself. Never use dev mode for real keys.\n"
          f"{bar}\n"
          f"  Address:     {addr}\n"
          f"  Root token:  {token_note}\n"
          f"  Data dir:    {settings.data_dir}\n"
          f"  Unseal file: {passphrase_file}\n\n"
          f"  export KEYKEEPER_ADDR={addr}\n"
          + (f"  export KEYKEEPER_TOKEN={token_note}\n" if token_note != _TOKEN_NOTE
             else "  # KEYKEEPER_TOKEN: the root token printed at the first start\n")
          + (f"  export KEYKEEPER_CACERT={shlex.quote(str(cacert))}\n" if cacert else "")
          + bar,
          file=sys.stderr, flush=True)
    return passphrase_file


def _start_note(engine: Any) -> str:
    """The banner's next step, by the stored seal type (docs/seal.md)."""
    from keykeeper.store.system import SystemRepository

    with engine.connect() as conn:
        repo = SystemRepository()
        record: Any = repo.get_config(conn, "seal")
        legacy = repo.get_config(conn, "seal.passphrase")
    kind = record.get("type", "passphrase") if isinstance(record, dict) else (
        "passphrase" if legacy is not None else None)
    if kind is None:
        return ("Not initialized: run `keykeeper init` once (--seal passphrase | shamir | "
                "pkcs11); it then starts sealed.")
    if kind == "pkcs11":
        return ("Sealed by a PKCS#11 token: it unseals itself at start (`keykeeper status` "
                "shows why if it cannot).")
    what = "the passphrase" if kind == "passphrase" else "a threshold of the unseal shares"
    return f"It starts sealed: run `keykeeper unseal` ({what}) after every start."


def _tls_note(tls: TlsSettings | None) -> str:
    return "" if tls is None else f"; TLS, client certificates: {tls.client_auth}"


def _uvicorn_tls(tls: TlsSettings | None) -> dict[str, Any]:
    if tls is None:
        return {}
    from keykeeper.rest.tls import uvicorn_options

    return uvicorn_options(tls)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to any interface


def run_server(*, listen: str = "127.0.0.1:8200", data_dir: str | None = None,
               database_url: str | None = None, dev: bool = False,
               dev_root_token: str | None = None, workers: int = 1,
               tls_cert: str | None = None, tls_key: str | None = None,
               tls_client_ca: str | None = None, tls_client_auth: str | None = None,
               insecure_no_tls: bool = False, kmip_listen: str | None = None) -> None:
    """Migrate the store, bootstrap dev mode if asked, and serve with uvicorn.

    ``tls_*`` (or ``KEYKEEPER_TLS_*``) serve HTTPS, with client certificates verified
    when ``tls_client_auth`` is ``optional`` or ``required`` (docs/tls.md). Raises
    InvalidArgument for a malformed ``listen``, a multi-worker server that could not
    unseal each worker (set KEYKEEPER_UNSEAL_PASSPHRASE_FILE or use --dev), bad TLS files
    or settings, and plain HTTP on a non-loopback address without ``insecure_no_tls``
    (or ``KEYKEEPER_INSECURE_NO_TLS=on``). ``kmip_listen`` (or ``KEYKEEPER_KMIP_LISTEN``)
    also serves KMIP over mutual TLS (docs/kmip.md); InvalidArgument without TLS and a
    client CA.
    """
    import uvicorn

    host, port = _parse_listen(listen)
    if workers < 1:
        raise InvalidArgument("--workers must be at least 1")
    for name, value in (("KEYKEEPER_TLS_CERT_FILE", tls_cert), ("KEYKEEPER_TLS_KEY_FILE", tls_key),
                        ("KEYKEEPER_TLS_CLIENT_CA_FILE", tls_client_ca),
                        ("KEYKEEPER_TLS_CLIENT_AUTH", tls_client_auth),
                        ("KEYKEEPER_KMIP_LISTEN", kmip_listen)):
        if value:
            os.environ[name] = value  # workers read their settings from the environment
    tls = Settings.from_env().tls
    if tls is not None:
        server_context(tls)  # bad files or a mismatched key: one clear line, before anything
    elif not _is_loopback(host) and not (insecure_no_tls or _on_off(
            os.environ.get("KEYKEEPER_INSECURE_NO_TLS") or "off", "KEYKEEPER_INSECURE_NO_TLS")):
        raise InvalidArgument(
            f"refusing plain HTTP on {host}:{port}, which is not a loopback address: give "
            "--tls-cert and --tls-key (docs/tls.md), or --insecure-no-tls behind a "
            "TLS-terminating proxy")
    scheme = "https" if tls is not None else "http"
    if dev and data_dir is None:
        # Like Vault's -dev, nothing outlives the process: the temporary directory (which
        # holds the dev unseal passphrase) is removed when the server exits.
        data_dir = tempfile.mkdtemp(prefix="keykeeper-dev-")
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
        # uvicorn re-raises a SIGTERM it caught once it has shut down; the default action
        # would end the process without running atexit, leaving the directory (and its
        # plain-text unseal passphrase) behind. Exit normally instead.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    directory = Path(data_dir or os.environ.get("KEYKEEPER_DATA_DIR", "data")).resolve()
    os.environ["KEYKEEPER_DATA_DIR"] = str(directory)
    if database_url:
        os.environ["KEYKEEPER_DATABASE_URL"] = database_url
    settings = Settings.from_env()
    MonitorSettings.from_env()  # a bad rules file or webhook: one clear line, before workers
    backup_schedule_settings(settings)  # a bad KEYKEEPER_BACKUP_*: the same, before the banner
    if settings.kmip_listen is not None:
        kmip_tls_context(settings.kmip_listener_tls)  # no TLS or no client CA: one line
        if workers > 1:  # every worker serves KMIP on the shared port (SO_REUSEPORT)
            os.environ["KEYKEEPER_KMIP_REUSE_PORT"] = "on"
        check_bindable(settings.kmip_listen, reuse_port=workers > 1)  # in use: one line
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        start_note = _start_note(engine)
    except Exception as exc:
        raise KeykeeperError(f"cannot prepare the database: {type(exc).__name__}") from None
    finally:
        engine.dispose()
    if dev:
        passphrase_file = _dev_bootstrap(settings, dev_root_token, f"{scheme}://{host}:{port}",
                                         issuing_ca_file(tls) if tls is not None else None)
        os.environ["KEYKEEPER_UNSEAL_PASSPHRASE_FILE"] = str(passphrase_file)
    elif (workers > 1 and "KEYKEEPER_UNSEAL_PASSPHRASE_FILE" not in os.environ
          and HsmConfig.from_env() is None):  # a pkcs11 seal unseals each worker itself
        raise InvalidArgument("with --workers > 1 each worker must unseal itself: set "
                              "KEYKEEPER_UNSEAL_PASSPHRASE_FILE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    if not dev:
        print(f"keykeeper {__version__} listening on {scheme}://{host}:{port} "
              f"({workers} worker(s){_tls_note(tls)});"
              f" data: {settings.data_dir}; database: {engine.url.render_as_string()}"
              + (f"; KMIP on {settings.kmip_listen.host}:{settings.kmip_listen.port}"
                 f" (namespace {settings.kmip.namespace})"
                 if settings.kmip_listen is not None else "") + "\n"
              + start_note, file=sys.stderr, flush=True)
    config = uvicorn.Config("keykeeper.config:app_factory", factory=True, host=host, port=port,
                            workers=workers, log_level="warning", access_log=False,
                            server_header=False, **_uvicorn_tls(tls))
    if workers == 1:
        uvicorn.Server(config).run()
        return
    # With several workers uvicorn binds the socket itself with proto 0, so asyncio never
    # sets TCP_NODELAY and every keep-alive reply waits ~40 ms for a delayed ACK (uvicorn
    # issue #3149). Set it on the listener: Linux copies it to each accepted socket.
    from uvicorn.supervisors.multiprocess import Multiprocess

    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()
