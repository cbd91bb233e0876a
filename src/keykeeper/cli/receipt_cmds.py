"""``keykeeper key receipt ...``: fetch destruction receipts and verify them offline.

``verify`` checks every receipt in a file (one receipt object, or a JSON array of them as
``get`` writes) with pyca/cryptography only (client/receipts.py). The trusted key is the
PEM file given with ``--public-key``, else the server's (``GET /v1/sys/receipt-key``,
fetched when an address is set); it says which one it trusted. A receipt that fails,
or a file that is not receipts, or a trusted key that is not an Ed25519 PEM public key,
prints one line ``error: receipt_invalid: ...`` and exits 1; an unreadable file exits 2."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from keykeeper.cli._state import emit_json, emit_table, get_state, stderr
from keykeeper.client.receipts import (
    ReceiptInvalid,
    fingerprint,
    load_public_key,
    parse_json,
    verify_receipt,
)

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

KEY_ARG = typer.Argument(..., help="Key id, namespace:name, or name (namespace default).")


@app.command("get")
def get(ctx: typer.Context, key: str = KEY_ARG,
        out: Path | None = typer.Option(None, "--out", "-o",
                                        help="Write the receipts (a JSON array) here.")
        ) -> None:
    """Fetch a key's signed destruction receipts (also for a destroyed key)."""
    state = get_state(ctx)
    with state.client() as kk:
        found = kk.receipts(key)
    if out is not None:
        out.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
        stderr(f"wrote {len(found)} receipt(s) to {out}")
    elif state.json:
        emit_json(found)
    else:
        emit_table(["receipt", "scope", "versions", "time", "requested by", "destroyed by"],
                   ((r.get("receipt_id"), r.get("scope"),
                     ",".join(str(v.get("version")) for v in r.get("versions", [])),
                     r.get("time"), r.get("requested_by"), r.get("destroyed_by"))
                    for r in found))


_PEM_MAX = 64 * 1024   # bytes; an Ed25519 SPKI PEM is 113


def _read(path: Path, what: str, limit: int | None = None) -> bytes:
    """The file's bytes (at most ``limit + 1`` of them); exit 2 with one line if it
    cannot be read."""
    try:
        with path.open("rb") as f:
            return f.read() if limit is None else f.read(limit + 1)
    except OSError as exc:
        stderr(f"error: usage: cannot read {what} {path}: {exc.strerror or exc}")
        raise typer.Exit(2) from None


def _receipts(path: Path, data: bytes) -> list[dict[str, Any]]:
    """The receipt objects in ``data``: one object, an array of them, or ``{"receipts":
    [...]}`` (the REST answer). Each element must itself be a JSON object: a string in
    the array is not decoded again. Raises ReceiptInvalid."""
    try:
        doc = parse_json(data)
    except ReceiptInvalid as exc:
        raise ReceiptInvalid(f"{path}: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("receipts"), list):
        doc = doc["receipts"]
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise ReceiptInvalid(f"{path} holds no receipt")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            where = f"element {n + 1} of {path}" if isinstance(doc, list) else str(path)
            raise ReceiptInvalid(f"{where} is not a receipt (a JSON object)")
    return items


@app.command("verify")
def verify(ctx: typer.Context,
           file: Path = typer.Argument(..., help="A receipt, or a JSON array of them."),
           public_key: Path | None = typer.Option(
               None, "--public-key", help="PEM file of the receipt-signing key you trust "
               "(default: the server's, from KEYKEEPER_ADDR or --addr).")) -> None:
    """Verify destruction receipts offline; exit 1 with one line if any fails."""
    state = get_state(ctx)
    pem: str | bytes
    if public_key is not None:
        pem = _read(public_key, "--public-key", _PEM_MAX)
        source = f"--public-key {public_key}"
    elif state.addr or os.environ.get("KEYKEEPER_ADDR"):
        with state.client() as kk:
            pem = kk.receipt_public_key()
            source = f"the server's key ({kk.addr}/v1/sys/receipt-key)"
    else:
        stderr("error: usage: no trusted key: give --public-key PEMFILE or set "
               "KEYKEEPER_ADDR to fetch the server's")
        raise typer.Exit(2)
    data = _read(file, "receipt file")
    try:
        trusted_fingerprint = fingerprint(load_public_key(pem))
        items = _receipts(file, data)
        checked = []
        for n, item in enumerate(items):
            try:
                checked.append(verify_receipt(item, pem))
            except ReceiptInvalid as exc:
                raise ReceiptInvalid(f"receipt {n + 1} of {len(items)}: {exc}"
                                     if len(items) > 1 else str(exc)) from None
    except ReceiptInvalid as exc:
        stderr(f"error: receipt_invalid: {exc}")
        raise typer.Exit(1) from None
    if state.json:
        emit_json({"valid": True, "trusted_key": source, "fingerprint": trusted_fingerprint,
                   "receipts": [c.receipt_id for c in checked]})
        return
    stderr(f"trusted key: {source}, {trusted_fingerprint}")
    for c in checked:
        versions = ",".join(str(v) for v in c.versions)
        typer.echo(f"valid: {c.receipt_id} key {c.key} ({c.key_id}) version(s) {versions} "
                   f"destroyed {c.time}, no wrapped copy remains")
