"""``keykeeper rewrap``: move many ciphertexts to their key's current primary version.

``rewrap KEY [CIPHERTEXT]`` is the one-ciphertext form (cli/crypto_cmds.py does it);
``rewrap --in FILE.jsonl``, without KEY, is the bulk form below.

Input is JSON Lines: each line a JSON object ``{"ciphertext": ..., "context": {...}?,
"key": ...?}`` or a bare JSON string (a ciphertext). The key is the line's ``key``, else
``--key``, else the id inside the ciphertext (``keykeeper:v1:<key id>:<version>:...``).
Output is JSON Lines, one per input line in order: ``{"line": n, "key": ...,
"ciphertext": ..., "key_version": n, "context": {...}?}`` or ``{"line": n, "error":
{"code": ..., "detail": ...}}``; blank lines are skipped (their number too). Exit 1 if any
line failed. Rotate first; ``--allow-compromised`` lets a compromised version decrypt (the
recovery path of compromise response; audited).

Constant memory: the input is read as bytes, one line at a time, at most
:data:`MAX_LINE` bytes of it (a ciphertext of the largest plaintext, 64 KiB
(docs/ciphertext-format.md), is under 100 KiB of base64); a longer line, or one that is
not UTF-8, is that line's own ``invalid_argument`` error, and the rest of a long line is
read and dropped in chunks. ``--out FILE`` is written to a temporary file beside it and
renamed over FILE at the end, so FILE never holds a partial answer; ``--out`` naming the
``--in`` file is a usage error (exit 2)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any, BinaryIO

import typer

from keykeeper.cli import crypto_cmds
from keykeeper.cli._output import output_file
from keykeeper.cli._state import get_state, stderr

__all__ = ["rewrap"]


MAX_LINE = 1024 * 1024          # bytes of one input line, newline excluded
_CHUNK = 64 * 1024              # bytes read at a time while dropping an over-long line


def _parse(line: bytes) -> Any:
    """The item of one line, or raise ValueError with a one-line reason."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start + 1} of the line)") from None
    try:
        item = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("not a JSON value") from None
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("ciphertext"), str):
        return item
    raise ValueError('expected a JSON string or an object with "ciphertext"')


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """``(number, line)`` for each non-blank line, without its newline; ``line`` is None
    for a line over MAX_LINE bytes, whose bytes are read and dropped, never held."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if line.endswith(b"\n"):
            line = line[:-1]
        elif len(line) > MAX_LINE:
            while True:                         # drop the rest of this line
                rest = stream.readline(_CHUNK)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        if line.strip():
            yield number, line


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def rewrap(
    ctx: typer.Context,
    key_arg: str | None = typer.Argument(
        None, metavar="KEY", help="One ciphertext mode: the key."),
    ciphertext: str | None = typer.Argument(
        None, help="One ciphertext mode: the ciphertext; else --in FILE or stdin."),
    input_file: Path | None = typer.Option(
        None, "--in", help="Without KEY: JSON Lines of ciphertexts ('-': stdin). With KEY: "
        "a file holding one ciphertext."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Without KEY: write JSON "
                                    "Lines here, replacing the file only when done (default "
                                    "or '-': stdout); not the --in file."),
    key: str | None = typer.Option(None, "--key", help="Without KEY: key of lines that "
                                   "name none (default: the id inside each ciphertext)."),
    context: list[str] | None = typer.Option(
        None, "--context", help="With KEY: k=v bound as associated data; repeatable."),
    allow_compromised: bool = typer.Option(
        False, "--allow-compromised",
        help="Recovery: let a compromised key or version decrypt (audited)."),
    to_key: str | None = typer.Option(
        None, "--to-key", help="Without KEY: re-encrypt under this key instead (for a key "
        "compromised as a whole, which cannot rotate); needs encrypt on it."),
) -> None:
    """Re-encrypt under the primary version: ``rewrap --in FILE.jsonl`` moves a whole
    file of ciphertexts (one JSON Lines answer per non-blank line, in order; a line over
    1 MiB or not UTF-8 is that line's error; exit 1 if any failed; ``--out`` is replaced
    only when done and must not be the ``--in`` file); ``rewrap KEY [CIPHERTEXT]`` one
    ciphertext, printing the new one."""
    if key_arg is not None:
        if out is not None or key is not None:
            stderr("error: usage: --out and --key go with --in FILE.jsonl, without KEY")
            raise typer.Exit(2)
        crypto_cmds.rewrap(ctx, key_arg, ciphertext, input_file, context, allow_compromised,
                           to_key)
        return
    if input_file is None or context:
        stderr("error: usage: give --in FILE.jsonl (contexts go in its lines), or KEY "
               "[CIPHERTEXT] for one ciphertext")
        raise typer.Exit(2)
    _rewrap_file(ctx, input_file, out, key, allow_compromised, to_key)


def _rewrap_file(ctx: typer.Context, input_file: Path, out: Path | None, key: str | None,
                 allow_compromised: bool, to_key: str | None) -> None:
    state = get_state(ctx)
    from_stdin = str(input_file) == "-"
    to_stdout = out is None or str(out) == "-"
    if out is not None and not to_stdout and not from_stdin and _same_file(input_file, out):
        stderr(f"error: usage: --out {out} is the --in file: write to another file")
        raise typer.Exit(2)
    if out is not None and not to_stdout and out.is_dir():
        stderr(f"error: usage: --out {out} is a directory")
        raise typer.Exit(2)
    done = failed = 0
    with ExitStack() as stack:
        src: BinaryIO = (typer.get_binary_stream("stdin") if from_stdin
                         else stack.enter_context(input_file.open("rb")))
        dst: IO[str] = (sys.stdout if to_stdout or out is None
                        else stack.enter_context(output_file(out, binary=False)))
        kk = stack.enter_context(state.client())
        for number, line in _lines(src):
            answer: dict[str, Any] = {"line": number}
            try:
                if line is None:
                    raise ValueError(f"line longer than {MAX_LINE} bytes")
                item = _parse(line)
            except ValueError as exc:
                answer["error"] = {"code": "invalid_argument", "detail": str(exc)}
            else:
                result = next(kk.rewrap_many([item], key=key,
                                             allow_compromised=allow_compromised,
                                             destination_key=to_key))
                answer["key"] = result.key
                if result.ok:
                    answer["ciphertext"] = result.ciphertext
                    answer["key_version"] = result.key_version
                    if isinstance(item, dict) and item.get("context") is not None:
                        answer["context"] = item["context"]
                else:
                    answer["error"] = {"code": result.error_code,
                                       "detail": result.error_detail}
            if "error" in answer:
                failed += 1
            else:
                done += 1
            dst.write(json.dumps(answer) + "\n")
    if failed:
        stderr(f"error: rewrap: {failed} of {done + failed} line(s) failed "
               "(their error is in the output)")
        raise typer.Exit(1)
    stderr(f"rewrapped {done} line(s)")
