"""``encrypt-file`` and ``decrypt-file``: envelope encryption of files and pipes.

Output to a file goes to a temporary file beside it, renamed into place only on
success; on any failure the partial output is deleted. Output to stdout cannot
be taken back: on failure the error line tells the reader to discard it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import typer

from keykeeper.cli._output import output_file
from keykeeper.cli._state import emit_json, get_state, parse_pairs, stderr
from keykeeper.client import decrypt_stream, encrypt_stream
from keykeeper.client.framing import DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE
from keykeeper.errors import KeykeeperError

__all__ = ["register"]

SRC_ARG = typer.Argument(Path("-"), help="Input file; - for stdin.")
OUT_OPT = typer.Option(Path("-"), "--out", "-o", dir_okay=False, help="Output file; - for stdout.")
FORCE_OPT = typer.Option(False, "--force", "-f", help="Overwrite an existing output file.")
CONTEXT_OPT = typer.Option(None, "--context", help="k=v bound to the data key; repeatable.")


@contextlib.contextmanager
def _source(path: Path) -> Iterator[BinaryIO]:
    if str(path) == "-":
        yield typer.get_binary_stream("stdin")
    else:
        with path.open("rb") as fh:
            yield fh


def _run(
    ctx: typer.Context,
    src: Path,
    out: Path,
    force: bool,
    work: Callable[[BinaryIO, BinaryIO], int],
) -> None:
    if str(src) != "-" and not src.is_file():
        what = "is a directory" if src.is_dir() else "does not exist"
        raise typer.BadParameter(f"file {str(src)!r} {what}", param_hint="SRC")
    to_stdout = str(out) == "-"
    if to_stdout and typer.get_binary_stream("stdout").isatty():
        raise typer.BadParameter("refusing to write binary output to a terminal; use --out FILE")
    if not to_stdout and out.exists() and not force:
        raise typer.BadParameter(f"{out} exists; use --force to overwrite it")
    if to_stdout:
        stdout = typer.get_binary_stream("stdout")
        try:
            with _source(src) as fin:
                work(fin, stdout)
            stdout.flush()
        except KeykeeperError as exc:
            stderr(f"error: {exc.code}: {exc.detail} (discard the partial output on stdout)")
            raise typer.Exit(1) from None
        return
    with output_file(out, binary=True) as fout, _source(src) as fin:
        count = work(fin, fout)  # type: ignore[arg-type]
    if get_state(ctx).json:
        emit_json({"out": str(out), "plaintext_bytes": count})
    else:
        stderr(f"wrote {out} ({count} plaintext bytes)")


def encrypt_file(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="Key id, namespace:name, or name."),
    src: Path = SRC_ARG,
    out: Path = OUT_OPT,
    context: list[str] | None = CONTEXT_OPT,
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK_SIZE,
        "--chunk-size",
        min=1,
        max=MAX_CHUNK_SIZE,
        help="Plaintext bytes per chunk.",
    ),
    force: bool = FORCE_OPT,
) -> None:
    """Encrypt a file or stdin with a fresh data key (KKENV1 envelope, constant memory)."""
    ctx_map = parse_pairs(context)
    with get_state(ctx).client() as kk:
        _run(
            ctx,
            src,
            out,
            force,
            lambda fin, fout: encrypt_stream(
                kk, key, fin, fout, context=ctx_map, chunk_size=chunk_size
            ),
        )


def decrypt_file(
    ctx: typer.Context,
    src: Path = SRC_ARG,
    out: Path = OUT_OPT,
    context: list[str] | None = CONTEXT_OPT,
    force: bool = FORCE_OPT,
) -> None:
    """Decrypt a KKENV1 envelope (the key comes from its header); output only if intact."""
    ctx_map = parse_pairs(context)
    with get_state(ctx).client() as kk:
        _run(
            ctx,
            src,
            out,
            force,
            lambda fin, fout: decrypt_stream(kk, fin, fout, context=ctx_map),
        )


def register(app: typer.Typer) -> None:
    app.command("encrypt-file")(encrypt_file)
    app.command("decrypt-file")(decrypt_file)
