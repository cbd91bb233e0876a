"""``keykeeper key receipt ...``: fetch destruction receipts and verify them offline.

``verify`` checks every receipt in a file (one receipt object, or a JSON array of them as
``get`` writes) with pyca/cryptography only (client/receipts.py). The trusted key is the
PEM file given with ``--public-key``, else the server's (``GET /v1/sys/receipt-key``,
fetched when an address is set); it says which one it trusted. A receipt that fails
prints one line and exits 1."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import typer
from cryptography.hazmat.primitives import serialization

from keykeeper.cli._state import emit_json, emit_table, get_state, stderr
from keykeeper.client.receipts import ReceiptInvalid, verify_receipt

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


def _fingerprint(pem: str) -> str:
    key = serialization.load_pem_public_key(pem.encode())
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


def _receipts(path: Path) -> list[Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeError):
        raise ReceiptInvalid(f"{path} is not a JSON document") from None
    if isinstance(doc, dict) and isinstance(doc.get("receipts"), list):
        doc = doc["receipts"]
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise ReceiptInvalid(f"{path} holds no receipt")
    return items


@app.command("verify")
def verify(ctx: typer.Context,
           file: Path = typer.Argument(..., help="A receipt, or a JSON array of them."),
           public_key: Path | None = typer.Option(
               None, "--public-key", help="PEM file of the receipt-signing key you trust "
               "(default: the server's, from KEYKEEPER_ADDR or --addr).")) -> None:
    """Verify destruction receipts offline; exit 1 with one line if any fails."""
    state = get_state(ctx)
    if public_key is not None:
        pem = public_key.read_text()
        source = f"--public-key {public_key}"
    elif state.addr or os.environ.get("KEYKEEPER_ADDR"):
        with state.client() as kk:
            pem = kk.receipt_public_key()
            source = f"the server's key ({kk.addr}/v1/sys/receipt-key)"
    else:
        stderr("error: usage: no trusted key: give --public-key PEMFILE or set "
               "KEYKEEPER_ADDR to fetch the server's")
        raise typer.Exit(2)
    try:
        fingerprint = _fingerprint(pem)
        checked = [verify_receipt(item, pem) for item in _receipts(file)]
    except (ReceiptInvalid, ValueError) as exc:
        stderr(f"error: receipt_invalid: {exc}")
        raise typer.Exit(1) from None
    if state.json:
        emit_json({"valid": True, "trusted_key": source, "fingerprint": fingerprint,
                   "receipts": [c.receipt_id for c in checked]})
        return
    stderr(f"trusted key: {source}, {fingerprint}")
    for c in checked:
        versions = ",".join(str(v) for v in c.versions)
        typer.echo(f"valid: {c.receipt_id} key {c.key} ({c.key_id}) version(s) {versions} "
                   f"destroyed {c.time}, no wrapped copy remains")
