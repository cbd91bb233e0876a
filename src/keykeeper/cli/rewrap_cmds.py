"""``keykeeper rewrap``: move many ciphertexts to their key's current primary version.

``rewrap KEY [CIPHERTEXT]`` is the one-ciphertext form (cli/crypto_cmds.py does it);
``rewrap --in FILE.jsonl``, without KEY, is the bulk form below.

Input is JSON Lines: each line a JSON object ``{"ciphertext": ..., "context": {...}?,
"key": ...?}`` or a bare JSON string (a ciphertext). The key is the line's ``key``, else
``--key``, else the id inside the ciphertext (``keykeeper:v1:<key id>:<version>:...``).
Output is JSON Lines, one per input line in order: ``{"line": n, "key": ...,
"ciphertext": ..., "key_version": n, "context": {...}?}`` or ``{"line": n, "error":
{"code": ..., "detail": ...}}``. One line at a time: constant memory. Exit 1 if any line
failed. Rotate first; ``--allow-compromised`` lets a compromised version decrypt (the
recovery path of compromise response; audited)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import typer

from keykeeper.cli import crypto_cmds
from keykeeper.cli._state import get_state, stderr

__all__ = ["rewrap"]


def _parse(line: str) -> Any:
    """The item of one line, or raise ValueError with a one-line reason."""
    try:
        item = json.loads(line)
    except ValueError:
        raise ValueError("not a JSON value") from None
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("ciphertext"), str):
        return item
    raise ValueError('expected a JSON string or an object with "ciphertext"')


def _lines(stream: TextIO) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


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
                                    "Lines here (default: stdout)."),
    key: str | None = typer.Option(None, "--key", help="Without KEY: key of lines that "
                                   "name none (default: the id inside each ciphertext)."),
    context: list[str] | None = typer.Option(
        None, "--context", help="With KEY: k=v bound as associated data; repeatable."),
    allow_compromised: bool = typer.Option(
        False, "--allow-compromised",
        help="Recovery: let a compromised key or version decrypt (audited)."),
) -> None:
    """Re-encrypt under the primary version: ``rewrap --in FILE.jsonl`` moves a whole
    file of ciphertexts (one JSON Lines answer per line; exit 1 if any failed);
    ``rewrap KEY [CIPHERTEXT]`` one ciphertext, printing the new one."""
    if key_arg is not None:
        if out is not None or key is not None:
            stderr("error: usage: --out and --key go with --in FILE.jsonl, without KEY")
            raise typer.Exit(2)
        crypto_cmds.rewrap(ctx, key_arg, ciphertext, input_file, context, allow_compromised)
        return
    if input_file is None or context:
        stderr("error: usage: give --in FILE.jsonl (contexts go in its lines), or KEY "
               "[CIPHERTEXT] for one ciphertext")
        raise typer.Exit(2)
    _rewrap_file(ctx, input_file, out, key, allow_compromised)


def _rewrap_file(ctx: typer.Context, input_file: Path, out: Path | None, key: str | None,
                 allow_compromised: bool) -> None:
    state = get_state(ctx)
    done = failed = 0
    with ExitStack() as stack:
        src: TextIO = (sys.stdin if str(input_file) == "-"
                       else stack.enter_context(input_file.open(encoding="utf-8")))
        dst: TextIO = (sys.stdout if out is None
                       else stack.enter_context(out.open("w", encoding="utf-8")))
        kk = stack.enter_context(state.client())
        for number, line in _lines(src):
            answer: dict[str, Any] = {"line": number}
            try:
                item = _parse(line)
            except ValueError as exc:
                answer["error"] = {"code": "invalid_argument", "detail": str(exc)}
            else:
                result = next(kk.rewrap_many([item], key=key,
                                             allow_compromised=allow_compromised))
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
