"""Per-invocation CLI state, output helpers and input helpers shared by the commands."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import typer
from rich.console import Console

from keykeeper.client import Client, Key

__all__ = [
    "State",
    "emit_fields",
    "emit_json",
    "get_state",
    "option_value",
    "parse_pairs",
    "read_input",
    "stdout_bytes",
    "write_bytes",
]


@dataclass
class State:
    """Global options, plus ``transport``: a hook for tests to inject an httpx transport."""

    addr: str | None = None
    token: str | None = None
    output: str = "table"
    transport: httpx.BaseTransport | None = None
    # TLS (docs/tls.md): CA file or directory, client certificate and key (PEM files).
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @property
    def json(self) -> bool:
        return self.output == "json"

    def client(self) -> Client:
        cert = ((self.client_cert, self.client_key) if self.client_cert and self.client_key
                else self.client_cert)
        return Client(self.addr, self.token, transport=self.transport,
                      verify=self.ca_cert, cert=cert)


def get_state(ctx: typer.Context) -> State:
    state = ctx.find_object(State)
    return state if state is not None else State()


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def emit_json(value: Any) -> None:
    """Print ``value`` (msgspec Structs, bytes as base64) as indented JSON on stdout."""
    typer.echo(json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=False))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    built = msgspec.to_builtins(value)
    return str(built)


def emit_fields(rows: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    """``name  value`` lines for people. Plain text, never wrapped by us, so a long value
    (a ciphertext, a token) copies out of the terminal intact."""
    pairs = [(name, _cell(value)) for name, value in rows]
    width = max((len(name) for name, _ in pairs), default=0)
    if title:
        typer.echo(title)
    for name, value in pairs:
        typer.echo(f"{name.ljust(width)}  {value}")


def _duration(seconds: int | None) -> str | None:
    if not seconds:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def shown_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels for a table: the ``kmip.*`` ones (KMIP attributes, encoded TTLV) counted, not
    printed; ``--format json`` shows them all."""
    shown = {k: v for k, v in labels.items() if not k.startswith("kmip.")}
    hidden = len(labels) - len(shown)
    if hidden:
        shown["kmip.*"] = f"{hidden} KMIP attribute(s)"
    return shown


def key_rows(key: Key) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("id", key.id),
        ("name", f"{key.namespace}:{key.name}"),
        ("purpose", key.purpose),
        ("algorithm", key.algorithm),
        ("state", key.state),
        ("primary version", key.primary_version),
        ("description", key.description or None),
        ("labels", shown_labels(key.labels)),
        ("exportable", key.exportable),
        ("protection", key.protection),
        ("origin", key.origin),
        ("rotation period", _duration(key.rotation_period)),
        ("next rotation", key.next_rotation_time),
        ("created", key.created_at),
        ("updated", key.updated_at),
        ("activation date", key.activation_date),
        ("deactivation date", key.deactivation_date),
        ("min encryption version",
         key.min_encryption_version or "0 (only the primary version)"),
        ("min decryption version", key.min_decryption_version or "0 (every version)"),
        ("usage limit", key.usage_limit),
        ("usage rotate fraction", key.usage_rotate_fraction),
        ("rotation threshold", key.rotation_threshold),
        ("originator usage period", _duration(key.originator_usage_period)),
        ("recipient usage period", _duration(key.recipient_usage_period)),
    ]
    if key.rotation_reason:
        rows.append(("rotation reason", key.rotation_reason))
    if key.destruction_time is not None:
        rows.append(("destruction time", key.destruction_time))
    if key.compromised_at is not None:
        rows.append(("compromised at", key.compromised_at))
        rows.append(("compromise reason", key.compromise_reason))
    return rows


def option_value(raw: str | None, kind: str, flag: str) -> Any:
    """A lifecycle option's value: ``none`` clears the setting (None); ``kind`` is
    ``int``, ``float``, ``period`` (seconds or "90d", sent as given) or ``time``
    (RFC 3339, sent as given). Raises BadParameter for a malformed number."""
    if raw is None:
        return None
    if raw.strip().lower() == "none":
        return None
    if kind in ("period", "time"):
        return int(raw) if kind == "period" and raw.isdigit() else raw
    try:
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'none', got {raw!r}",
                                 param_hint=flag) from None


def emit_key(state: State, key: Key) -> None:
    if state.json:
        emit_json(key)
    else:
        emit_fields(key_rows(key))


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Aligned plain-text columns for people (as kubectl prints them): cells are never cut
    or folded, so names and ids copy out intact; a narrow terminal wraps whole lines."""
    cells = [[_cell(v) for v in row] for row in rows]
    header = [c.upper() for c in columns]
    widths = [max([len(header[i]), *(len(r[i]) for r in cells)]) for i in range(len(header))]
    for line in (header, *cells):
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def parse_pairs(values: Sequence[str] | None, what: str = "--context") -> dict[str, str] | None:
    """``["k=v", ...]`` to a dict; None when empty. Raises BadParameter on a missing ``=``."""
    if not values:
        return None
    out: dict[str, str] = {}
    for item in values:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=what)
        out[k] = v
    return out


def _stdin_bytes() -> bytes:
    stream = typer.get_binary_stream("stdin")
    if stream.isatty():
        raise typer.BadParameter("no input: pass it as an option, with --in FILE, or on stdin")
    return stream.read()


def read_input(text: str | None, path: Path | None, *, text_flag: str = "--plaintext") -> bytes:
    """Bytes from exactly one of ``text`` (UTF-8), ``path`` (``-`` = stdin), or stdin."""
    if text is not None and path is not None:
        raise typer.BadParameter(f"give {text_flag} or --in, not both")
    if text is not None:
        return text.encode("utf-8")
    if path is not None and str(path) != "-":
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise typer.BadParameter(f"file {str(path)!r} {what}", param_hint="--in")
        return path.read_bytes()
    return _stdin_bytes()


def read_text_arg(value: str | None, path: Path | None, what: str) -> str:
    """A text argument (e.g. a ciphertext) from the argument, ``--in FILE``, or stdin."""
    if value is not None and path is not None:
        raise typer.BadParameter(f"give {what} or --in, not both")
    if value is not None:
        return value.strip()
    raw = read_input(None, path)
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{what} must be ASCII text") from None


def stdout_bytes(data: bytes) -> None:
    stream = typer.get_binary_stream("stdout")
    stream.write(data)
    stream.flush()


def write_bytes(data: bytes, out: Path | None) -> None:
    """Raw bytes to ``out`` or, when None or ``-``, to stdout."""
    if out is None or str(out) == "-":
        if is_stdout_tty():
            # For a person at a terminal: text as text (with a newline), binary as base64.
            try:
                text = data.decode("utf-8")
                printable = all(c.isprintable() or c in "\n\t\r" for c in text)
            except UnicodeDecodeError:
                printable = False
            if not printable:
                stderr("(binary data shown as base64; use --out FILE for the raw bytes)")
                data = base64.b64encode(data)
            stdout_bytes(data if data.endswith(b"\n") else data + b"\n")
        else:
            stdout_bytes(data)  # piped: byte-exact
    else:
        out.write_bytes(data)


def stderr(message: str) -> None:
    typer.echo(message, err=True)


def is_stdout_tty() -> bool:
    return sys.stdout.isatty()


def confirm(yes: bool, question: str, refusal: str) -> None:
    """Go on after ``--yes``, or after the person at the terminal answers ``question``
    yes; without a terminal, one usage line (``refusal; add --yes to confirm``), exit 2."""
    if yes:
        return
    if not sys.stdin.isatty():
        stderr(f"error: usage: {refusal}; add --yes to confirm")
        raise typer.Exit(2)
    typer.confirm(question, abort=True, err=True)
