"""``keykeeper key import-params``, ``key import`` and ``key export``: bring your own key
and wrapped export (docs/import-export.md). The CLI never wraps or unwraps key material:
``import-params`` writes the wrapping public key to a file for the tool that wraps (openssl,
pyca/cryptography), ``import`` sends the wrapped file, ``export`` writes the wrapped
material (raw bytes) to a file. Export is under dual control by default: the command then
prints one ``approval required`` line and exits 4 (cli/main.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from keykeeper.cli._output import output_file
from keykeeper.cli._state import emit_fields, emit_json, emit_key, get_state, stderr

__all__ = ["MATERIAL_FORMATS", "export_key", "import_key", "import_params"]

#: The values of ``key import --format`` (the material's format, not the output's: cli/main.py
#: leaves ``--format`` with one of these in place instead of hoisting it).
MATERIAL_FORMATS = ("raw", "pkcs8", "pkcs1", "sec1", "spki")

KEY_ARG = typer.Argument(..., help="Key id, namespace:name, or name (namespace default).")


def _read(path: Path, flag: str) -> bytes:
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise typer.BadParameter(f"file {str(path)!r} {what}", param_hint=flag)
    return path.read_bytes()


def import_params(
    ctx: typer.Context,
    key: str = KEY_ARG,
    wrapping_algorithm: str | None = typer.Option(
        None, "--wrapping-algorithm",
        help="RSA_AES_KEY_WRAP_SHA256 (default) or RSA_OAEP_SHA256."),
    expires_in: str | None = typer.Option(None, "--expires-in",
                                          help="Token lifetime: seconds or 12h (default 24h)."),
    public_key_out: Path | None = typer.Option(
        None, "--public-key-out", help="Write the wrapping public key (PEM) to this file."),
) -> None:
    """Get a wrapping public key and a single-use import token for an external key."""
    state = get_state(ctx)
    with state.client() as kk:
        made = kk.import_parameters(key, wrapping_algorithm=wrapping_algorithm,
                                    expires_in=expires_in)
    if public_key_out is not None:
        with output_file(public_key_out, binary=False) as stream:
            stream.write(made.public_key)
    if state.json:
        emit_json(made)
        return
    emit_fields([("key id", made.key_id), ("import token", made.import_token),
                 ("wrapping algorithm", made.wrapping_algorithm),
                 ("expires at", made.expires_at),
                 ("wrapping key fingerprint", made.wrapping_key_fingerprint)])
    if public_key_out is None:
        typer.echo(made.public_key.rstrip("\n"))


def import_key(
    ctx: typer.Context,
    key: str = KEY_ARG,
    import_token: str | None = typer.Option(
        None, "--import-token", help="From key import-params (visible in the shell history "
        "and the process list: prefer --import-token-file)."),
    import_token_file: Path | None = typer.Option(
        None, "--import-token-file", help="File holding the import token; with neither "
        "option, a hidden prompt (or a line of stdin)."),
    material_file: Path = typer.Option(..., "--material-file",
                                       help="The wrapped key material (raw bytes)."),
    fmt: str = typer.Option(..., "--format",
                            help="raw | pkcs8 | pkcs1 | sec1 | spki (of the material inside)."),
) -> None:
    """Import wrapped key material as the external key's new primary version."""
    state = get_state(ctx)
    if import_token is not None and import_token_file is not None:
        raise typer.BadParameter("give --import-token or --import-token-file, not both",
                                 param_hint="--import-token-file")
    if import_token is None:
        import_token = _import_token(import_token_file)
    wrapped = _read(material_file, "--material-file")
    with state.client() as kk:
        emit_key(state, kk.import_key_material(key, import_token, wrapped, fmt))


def _import_token(path: Path | None) -> str:
    """The token from ``path`` (its line ending dropped), else a line of stdin (a hidden
    prompt on a terminal)."""
    if path is not None:
        token = _read(path, "--import-token-file").decode("utf-8", "replace").strip()
    elif sys.stdin.isatty():
        token = str(typer.prompt("Import token", hide_input=True, err=True)).strip()
    else:
        token = sys.stdin.readline().strip()
    if not token:
        raise typer.BadParameter("the import token is empty", param_hint="--import-token-file")
    return token


def export_key(
    ctx: typer.Context,
    key: str = KEY_ARG,
    out: Path = typer.Option(..., "--out", help="Write the wrapped material (raw bytes) here."),
    wrapping_key_file: Path | None = typer.Option(
        None, "--wrapping-key-file", help="Your RSA public key (SPKI PEM, >= 3072 bits)."),
    wrap_with: str | None = typer.Option(None, "--wrap-with",
                                         help="A keykeeper key of purpose wrap."),
    version: int | None = typer.Option(None, "--version", help="Default: the primary."),
    wrapping_algorithm: str | None = typer.Option(None, "--wrapping-algorithm",
                                                  help="RSA_AES_KEY_WRAP_SHA256 (default) or "
                                                       "RSA_OAEP_SHA256."),
) -> None:
    """Export an exportable key, wrapped (never in clear), to --out."""
    state = get_state(ctx)
    if (wrapping_key_file is None) == (wrap_with is None):
        stderr("error: usage: give exactly one of --wrapping-key-file or --wrap-with")
        raise typer.Exit(2)
    pem = (None if wrapping_key_file is None
           else _read(wrapping_key_file, "--wrapping-key-file").decode("ascii", "replace"))
    with state.client() as kk:
        made = kk.export_key(key, version=version, wrapping_public_key=pem,
                             wrapping_key=wrap_with, wrapping_algorithm=wrapping_algorithm)
    with output_file(out, binary=True) as stream:
        stream.write(made.wrapped_key_material)
    fields: list[tuple[str, object]] = [
        ("key_id", made.key_id), ("key_version", made.key_version), ("format", made.format),
        ("wrapping_algorithm", made.wrapping_algorithm),
        ("wrapping_key_fingerprint", made.wrapping_key_fingerprint)]
    if made.wrapping_key is not None:  # --wrap-with: which keykeeper key and version
        fields += [("wrapping_key", made.wrapping_key),
                   ("wrapping_key_version", made.wrapping_key_version)]
    fields.append(("out", str(out)))
    if state.json:
        emit_json(dict(fields))
    else:  # the labels people read elsewhere: words, not JSON names
        emit_fields([(name.replace("_", " "), value) for name, value in fields])
