"""``keykeeper kmip conformance``: run the OASIS KMIP Profiles test cases (KMIP XML files)
against a KMIP server over mutual TLS and print a table per profile (docs/kmip-
conformance.md). Talks KMIP, not REST: it needs no token, only the server's address, the
CA that signed the server's certificate, and a client certificate the server maps to a
principal allowed to create and use keys.

Exit status: 0 every file passed or was skipped; 1 a file failed (or an option, the CA
or the certificate could not be used: one line on stderr).
"""

from __future__ import annotations

import json
import ssl
import tomllib
from pathlib import Path

import typer

from keykeeper.cli._state import get_state
from keykeeper.kmip.conformance import report
from keykeeper.kmip.conformance.runner import Target, case_files, load_list, run_file

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


def _address(value: str, option: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=option)
    return host.strip("[]"), int(port)


def _target(server: str, https: str | None, ca: Path | None, cert: Path | None,
            key: Path | None, timeout: float) -> Target:
    host, port = _address(server, "--server")
    if https is not None:
        _address(https, "--https")
    if key is not None and cert is None:
        raise typer.BadParameter("--key needs --cert", param_hint="--key")
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return Target(host, port, context, timeout, https)


@app.command("conformance")
def conformance(
    ctx: typer.Context,
    dirs: list[Path] = typer.Argument(..., help="Test-case directories or XML files.",
                                      exists=True),
    server: str = typer.Option(..., "--server", help="The KMIP listener, HOST:PORT."),
    https: str | None = typer.Option(None, "--https",
                                     help="The HTTPS (REST) listener, HOST:PORT: the MSGENC "
                                          "files then POST /kmip in their encoding."),
    ca: Path | None = typer.Option(None, "--ca", exists=True, dir_okay=False,
                                   help="CA file the server's certificate chains to "
                                        "(default: the system's)."),
    cert: Path | None = typer.Option(None, "--cert", exists=True, dir_okay=False,
                                     help="Client certificate (PEM); may hold the key."),
    key: Path | None = typer.Option(None, "--key", exists=True, dir_okay=False,
                                    help="The client certificate's private key (PEM)."),
    profile: str | None = typer.Option(None, "--profile",
                                       help="Only files of profiles starting with this "
                                            "prefix (AKLC, CS-BC, SKLC, ...)."),
    skip_list: Path | None = typer.Option(None, "--skip-list", exists=True, dir_okay=False,
                                          help='TOML file: "FILE.xml" = "reason" per file '
                                               "to skip."),
    timeout: float = typer.Option(60.0, "--timeout", min=1.0,
                                  help="Seconds to wait for each answer."),
) -> None:
    """Replay KMIP test cases against a server; print passed/failed/skipped per profile."""
    target = _target(server, https, ca, cert, key, timeout)
    try:
        skips = load_list(skip_list)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--skip-list") from None
    files = case_files(dirs, profile)
    if not files:
        raise typer.BadParameter("no *.xml test case found", param_hint="DIRS")
    results = []
    as_json = get_state(ctx).json
    generated: set[str] = set()  # shared across files, as run_paths does (TL-M-3: TL-M-2's key)
    for f in files:
        result = run_file(f, target, skips=skips, generated=generated)
        results.append(result)
        if not as_json:
            typer.echo(f"{result.status:<8} {result.name}", err=True)
    if as_json:
        typer.echo(json.dumps(report.as_json(results), indent=2))
    else:
        typer.echo(report.table(results))
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)
