"""``keykeeper dev-certs``: a local CA, a server certificate and a client certificate for
trying TLS and mTLS on one machine (docs/tls.md). A local command: no server is needed.

Writes six PEM files to ``--out`` (created mode 0700 if missing): ``ca.pem``,
``ca-key.pem``, ``server.pem``, ``server-key.pem``, ``client.pem``, ``client-key.pem``.
Keys are mode 0600, certificates 0644. Nothing existing is replaced without ``--force``
(then every file is replaced, each atomically through cli/_output.py).
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import Any

import typer
from cryptography import x509

from keykeeper.cli._output import output_file
from keykeeper.cli._state import emit_json, get_state, stderr
from keykeeper.cli._x509 import (
    Issued,
    KeyType,
    issue_ca,
    issue_client,
    issue_server,
    key_pem,
    parse_hosts,
)
from keykeeper.errors import AlreadyExists

__all__ = ["dev_certs"]

FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem",
         "client-key.pem")
_KEY_TYPES: dict[str, tuple[KeyType, str]] = {"ec": ("ec", "ECDSA P-256"),
                                              "rsa": ("rsa", "RSA-3072")}


def dev_certs(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Directory for the six PEM files."),
    hosts: str = typer.Option("localhost,127.0.0.1", "--hosts",
                              help="Server names: DNS names and IP addresses, comma-separated."),
    client_name: str = typer.Option("keykeeper-client", "--client-name",
                                    help="The client certificate's CN."),
    days: int = typer.Option(90, "--days", min=1, max=3650, help="Validity in days."),
    key_type: str = typer.Option("ec", "--key-type", help="ec (ECDSA P-256) or rsa (3072)."),
    force: bool = typer.Option(False, "--force", help="Replace existing files."),
    port: int = typer.Option(8200, "--port", min=1, max=65535,
                             help="The port the server will listen on (for the printed "
                                  "server line and KEYKEEPER_ADDR)."),
) -> None:
    """Write a development CA, server and client certificates (no server needed)."""
    if key_type not in _KEY_TYPES:
        raise typer.BadParameter(f"expected ec or rsa, got {key_type!r}",
                                 param_hint="--key-type")
    try:
        sans = parse_hosts(hosts)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--hosts") from None
    if not 1 <= len(client_name) <= 64 or not client_name.isprintable():
        raise typer.BadParameter("1 to 64 printable characters", param_hint="--client-name")
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is not a directory", param_hint="--out")
    paths = {name: (out / name).absolute() for name in FILES}
    existing = [str(p) for p in paths.values() if os.path.lexists(p)]
    if existing and not force:
        raise AlreadyExists(f"{', '.join(existing)} already exist(s); add --force to replace")

    kind, label = _KEY_TYPES[key_type]
    ca = issue_ca(f"keykeeper dev CA {secrets.token_hex(4)}", days=days, kind=kind)
    server = issue_server(ca, sans, days=days, kind=kind)
    client = issue_client(ca, client_name, days=days, kind=kind)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, issued in (("ca", ca), ("server", server), ("client", client)):
        _write(paths[f"{name}.pem"], issued.cert_pem, 0o644)
        _write(paths[f"{name}-key.pem"], key_pem(issued.key), 0o600)
    _report(ctx, paths, sans, client, client_name, label, days, port, out.absolute())


def _write(path: Path, data: bytes, mode: int) -> None:
    with output_file(path, binary=True) as stream:
        stream.write(data)
        os.fchmod(stream.fileno(), mode)


def _host(value: object) -> str:
    return f"[{value}]" if ":" in str(value) else str(value)


def _addr(sans: list[x509.GeneralName], port: int) -> str:
    dns = [n.value for n in sans if isinstance(n, x509.DNSName) and "*" not in n.value]
    return f"https://{_host(dns[0] if dns else sans[0].value)}:{port}"


def _listen(sans: list[x509.GeneralName], port: int) -> str:
    """Where the printed server line listens: the certificate's loopback address (or
    127.0.0.1 for ``localhost``) when it names one, else every interface."""
    for n in sans:
        if isinstance(n, x509.IPAddress) and n.value.is_loopback:
            return f"{_host(n.value)}:{port}"
    if any(isinstance(n, x509.DNSName) and n.value == "localhost" for n in sans):
        return f"127.0.0.1:{port}"
    return f"0.0.0.0:{port}"


def _report(ctx: typer.Context, paths: dict[str, Path], sans: list[x509.GeneralName],
            client: Issued, client_name: str, label: str, days: int, port: int,
            out: Path) -> None:
    q = {name: shlex.quote(str(p)) for name, p in paths.items()}
    # Complete as printed: a data directory beside the certificates' directory (any
    # directory will do, but not inside the PKI), and the port of KEYKEEPER_ADDR.
    data = out.resolve().parent / "data"
    server_cmd = (f"keykeeper server --listen {_listen(sans, port)} --data-dir "
                  f"{shlex.quote(str(data))} --tls-cert {q['server.pem']} --tls-key "
                  f"{q['server-key.pem']} --tls-client-ca {q['ca.pem']} "
                  "--tls-client-auth optional")
    subject = client.certificate.subject.rfc4514_string()
    env = {"KEYKEEPER_ADDR": _addr(sans, port), "KEYKEEPER_CACERT": str(paths["ca.pem"]),
           "KEYKEEPER_CLIENT_CERT": str(paths["client.pem"]),
           "KEYKEEPER_CLIENT_KEY": str(paths["client-key.pem"])}
    if get_state(ctx).json:
        doc: dict[str, Any] = {
            "ca_cert": str(paths["ca.pem"]), "ca_key": str(paths["ca-key.pem"]),
            "server_cert": str(paths["server.pem"]), "server_key": str(paths["server-key.pem"]),
            "client_cert": str(paths["client.pem"]), "client_key": str(paths["client-key.pem"]),
            "hosts": [str(n.value) for n in sans], "client_subject": subject,
            "key_type": label, "days": days, "server_command": server_cmd, "environment": env}
        emit_json(doc)
        return
    hosts = ", ".join(str(n.value) for n in sans)
    rows = [("CA certificate", "ca.pem", ""), ("CA key", "ca-key.pem", "(0600)"),
            ("server certificate", "server.pem", f"({hosts})"),
            ("server key", "server-key.pem", "(0600)"),
            ("client certificate", "client.pem", f"({subject})"),
            ("client key", "client-key.pem", "(0600)")]
    typer.echo(f"Wrote a development PKI ({label}, valid {days} days):")
    for what, name, note in rows:
        typer.echo(f"  {what:<19} {paths[name]}  {note}".rstrip())
    typer.echo(f"\nServe with them (port {port}: the one the server listens on, given "
               "by --port; change both together):\n  " + server_cmd)
    typer.echo("\nCall with them (the certificate authenticates once a principal lists its "
               "subject):")
    for name, value in env.items():
        typer.echo(f"  export {name}={shlex.quote(value)}")
    typer.echo(f"  keykeeper principal create {shlex.quote(principal_name(client_name))} "
               f"--cert-subject {shlex.quote(subject)} --role application")
    typer.echo("\nFor KMIP, add --kmip-listen 127.0.0.1:5696 to the server line; a KMIP "
               "client needs a role with the key operations it runs (key.create, key.get, "
               "...), not only 'application': docs/kmip.md, 'Permissions'.")
    stderr("WARNING: for development only: the CA key is unencrypted beside the certificates.")


def principal_name(client_name: str) -> str:
    """A principal name for the client certificate: ``client_name`` with characters
    outside ``[A-Za-z0-9._-]`` replaced by ``-``."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-"
                   for c in client_name)
