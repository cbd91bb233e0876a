"""Cryptographic operations: encrypt, decrypt, rewrap, data-key, sign, verify, mac,
verify-mac, public-key, encapsulate, decapsulate, random.

Table mode prints what a person wants to copy (a ciphertext, base64 bytes, raw
plaintext); json mode prints the API's object, binary values in base64.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import typer

from keykeeper.cli._state import (
    emit_fields,
    emit_json,
    get_state,
    parse_pairs,
    read_input,
    read_text_arg,
    write_bytes,
)

__all__ = ["register"]

EXIT_INVALID = 1

KEY_ARG = typer.Argument(..., help="Key id, namespace:name, or name (namespace default).")
IN_OPT = typer.Option(None, "--in", help="Read input from FILE (- for stdin).")
OUT_OPT = typer.Option(None, "--out", dir_okay=False, help="Write raw bytes to FILE.")
CONTEXT_OPT = typer.Option(None, "--context", help="k=v bound as associated data; repeatable.")
VERSION_OPT = typer.Option(None, "--key-version", min=1, help="Use this key version.")
ALLOW_COMPROMISED_OPT = typer.Option(
    False, "--allow-compromised",
    help="Recovery: use a compromised key or version (refused without it; audited).")


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise typer.BadParameter("not valid base64", param_hint=what) from None


def _message_or_digest(
    message: str | None, in_file: Path | None, digest_hex: str | None
) -> tuple[bytes | None, bytes | None]:
    if digest_hex is not None:
        if message is not None or in_file is not None:
            raise typer.BadParameter("give --digest-hex or a message, not both")
        try:
            return None, bytes.fromhex(digest_hex)
        except ValueError:
            raise typer.BadParameter("not valid hex", param_hint="--digest-hex") from None
    return read_input(message, in_file, text_flag="--message"), None


def _b64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encrypt(
    ctx: typer.Context,
    key: str = KEY_ARG,
    plaintext: str | None = typer.Option(None, "--plaintext", help="UTF-8 text to encrypt."),
    in_file: Path | None = IN_OPT,
    context: list[str] | None = CONTEXT_OPT,
    key_version: int | None = VERSION_OPT,
) -> None:
    """Encrypt --plaintext, --in FILE, or stdin; prints the ciphertext."""
    state = get_state(ctx)
    data = read_input(plaintext, in_file)
    with state.client() as kk:
        res = kk.encrypt(key, data, context=parse_pairs(context), key_version=key_version)
    if state.json:
        emit_json(res)
    else:
        typer.echo(res.ciphertext)


def decrypt(
    ctx: typer.Context,
    key: str = KEY_ARG,
    ciphertext: str | None = typer.Argument(None, help="Ciphertext; else --in FILE or stdin."),
    in_file: Path | None = IN_OPT,
    out: Path | None = OUT_OPT,
    context: list[str] | None = CONTEXT_OPT,
    allow_compromised: bool = ALLOW_COMPROMISED_OPT,
) -> None:
    """Decrypt; raw plaintext bytes to stdout or --out (json: base64)."""
    state = get_state(ctx)
    text = read_text_arg(ciphertext, in_file, "CIPHERTEXT")
    with state.client() as kk:
        res = kk.decrypt(key, text, context=parse_pairs(context),
                         allow_compromised=allow_compromised)
    if state.json and out is None:
        emit_json(res)
    else:
        write_bytes(res.plaintext, out)


def rewrap(
    ctx: typer.Context,
    key: str = KEY_ARG,
    ciphertext: str | None = typer.Argument(None, help="Ciphertext; else --in FILE or stdin."),
    in_file: Path | None = IN_OPT,
    context: list[str] | None = CONTEXT_OPT,
    allow_compromised: bool = ALLOW_COMPROMISED_OPT,
    to_key: str | None = None,
) -> None:
    """Re-encrypt a ciphertext under the key's primary version (or ``to_key``'s); prints
    the new ciphertext.
    The one-ciphertext form of ``keykeeper rewrap`` (cli/rewrap_cmds.py registers the
    command, with the JSON Lines form beside this one)."""
    state = get_state(ctx)
    text = read_text_arg(ciphertext, in_file, "CIPHERTEXT")
    with state.client() as kk:
        res = kk.rewrap(key, text, context=parse_pairs(context),
                        allow_compromised=allow_compromised, destination_key=to_key)
    if state.json:
        emit_json(res)
    else:
        typer.echo(res.ciphertext)


def data_key(
    ctx: typer.Context,
    key: str = KEY_ARG,
    key_spec: str = typer.Option("AES_256", "--key-spec", help="AES_256 | AES_128"),
    context: list[str] | None = CONTEXT_OPT,
    plaintext: bool = typer.Option(True, "--plaintext/--no-plaintext"),
) -> None:
    """Generate a data key: its wrapped form, and (unless --no-plaintext) base64 plaintext."""
    state = get_state(ctx)
    with state.client() as kk:
        dk = kk.generate_data_key(
            key, key_spec=key_spec, context=parse_pairs(context), include_plaintext=plaintext
        )
    if state.json:
        emit_json(dk)
        return
    rows: list[tuple[str, object]] = [
        ("ciphertext", dk.ciphertext),
        ("key version", dk.key_version),
    ]
    if dk.plaintext is not None:
        rows.append(("plaintext (base64)", _b64_text(dk.plaintext)))
    emit_fields(rows)


def sign(
    ctx: typer.Context,
    key: str = KEY_ARG,
    message: str | None = typer.Option(None, "--message", help="UTF-8 message to sign."),
    in_file: Path | None = IN_OPT,
    digest_hex: str | None = typer.Option(None, "--digest-hex", help="Precomputed digest, hex."),
    signature_format: str | None = typer.Option(None, "--signature-format", help="der | p1363"),
    key_version: int | None = VERSION_OPT,
    out: Path | None = typer.Option(
        None, "--out", dir_okay=False, help="Write the raw signature bytes to FILE."
    ),
) -> None:
    """Sign --message, --in FILE, stdin, or --digest-hex; prints the base64 signature."""
    state = get_state(ctx)
    msg, digest = _message_or_digest(message, in_file, digest_hex)
    with state.client() as kk:
        res = kk.sign(
            key, msg, digest=digest, signature_format=signature_format, key_version=key_version
        )
    if out is not None:
        out.write_bytes(res.signature)
    if state.json:
        emit_json(res)
    elif out is None:
        typer.echo(_b64_text(res.signature))


def _report_validity(ctx: typer.Context, valid: bool, key_version: int, what: str) -> None:
    if get_state(ctx).json:
        emit_json({"valid": valid, "key_version": key_version})
    else:
        typer.echo(f"{what} valid (key version {key_version})" if valid else f"{what} INVALID")
    if not valid:
        raise typer.Exit(EXIT_INVALID)


def verify(
    ctx: typer.Context,
    key: str = KEY_ARG,
    signature: str | None = typer.Argument(None, help="Signature, base64."),
    signature_file: Path | None = typer.Option(
        None, "--signature-file", exists=True, dir_okay=False, help="Raw signature bytes."
    ),
    message: str | None = typer.Option(None, "--message"),
    in_file: Path | None = IN_OPT,
    digest_hex: str | None = typer.Option(None, "--digest-hex"),
    signature_format: str | None = typer.Option(None, "--signature-format", help="der | p1363"),
    key_version: int | None = VERSION_OPT,
    allow_compromised: bool = ALLOW_COMPROMISED_OPT,
) -> None:
    """Verify a signature; exit 0 if valid, 1 if not."""
    if (signature is None) == (signature_file is None):
        raise typer.BadParameter("give SIGNATURE (base64) or --signature-file, exactly one")
    sig = signature_file.read_bytes() if signature_file else _b64(signature or "", "SIGNATURE")
    msg, digest = _message_or_digest(message, in_file, digest_hex)
    with get_state(ctx).client() as kk:
        res = kk.verify(
            key,
            sig,
            msg,
            digest=digest,
            signature_format=signature_format,
            key_version=key_version,
            allow_compromised=allow_compromised,
        )
    _report_validity(ctx, res.valid, res.key_version, "signature")


def mac(
    ctx: typer.Context,
    key: str = KEY_ARG,
    message: str | None = typer.Option(None, "--message"),
    in_file: Path | None = IN_OPT,
    key_version: int | None = VERSION_OPT,
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Raw tag to FILE."),
) -> None:
    """Compute a MAC over --message, --in FILE, or stdin; prints the base64 tag."""
    state = get_state(ctx)
    data = read_input(message, in_file, text_flag="--message")
    with state.client() as kk:
        res = kk.mac(key, data, key_version=key_version)
    if out is not None:
        out.write_bytes(res.mac)
    if state.json:
        emit_json(res)
    elif out is None:
        typer.echo(_b64_text(res.mac))


def verify_mac(
    ctx: typer.Context,
    key: str = KEY_ARG,
    tag: str | None = typer.Argument(None, metavar="MAC", help="MAC tag, base64."),
    mac_file: Path | None = typer.Option(
        None, "--mac-file", exists=True, dir_okay=False, help="Raw MAC tag bytes."
    ),
    message: str | None = typer.Option(None, "--message"),
    in_file: Path | None = IN_OPT,
    key_version: int | None = VERSION_OPT,
    allow_compromised: bool = ALLOW_COMPROMISED_OPT,
) -> None:
    """Verify a MAC tag; exit 0 if valid, 1 if not."""
    if (tag is None) == (mac_file is None):
        raise typer.BadParameter("give MAC (base64) or --mac-file, exactly one")
    raw = mac_file.read_bytes() if mac_file else _b64(tag or "", "MAC")
    data = read_input(message, in_file, text_flag="--message")
    with get_state(ctx).client() as kk:
        res = kk.verify_mac(key, data, raw, key_version=key_version,
                            allow_compromised=allow_compromised)
    _report_validity(ctx, res.valid, res.key_version, "MAC")


def public_key(
    ctx: typer.Context,
    key: str = KEY_ARG,
    version: int | None = typer.Option(None, "--version", min=1),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Write the PEM to FILE."),
) -> None:
    """Print a key version's public key (PEM)."""
    state = get_state(ctx)
    with state.client() as kk:
        res = kk.get_public_key(key, version=version)
    if out is not None:
        out.write_text(res.public_key, encoding="ascii")
    if state.json:
        emit_json(res)
    elif out is None:
        typer.echo(res.public_key.rstrip("\n"))


def encapsulate(
    ctx: typer.Context, key: str = KEY_ARG, key_version: int | None = VERSION_OPT
) -> None:
    """Make a shared secret with a KEM key; prints it and its ciphertext in base64."""
    state = get_state(ctx)
    with state.client() as kk:
        res = kk.encapsulate(key, key_version=key_version)
    if state.json:
        emit_json(res)
    else:
        emit_fields(
            [
                ("shared secret (base64)", _b64_text(res.shared_secret)),
                ("ciphertext (base64)", _b64_text(res.ciphertext)),
                ("key version", res.key_version),
            ]
        )


def decapsulate(
    ctx: typer.Context,
    key: str = KEY_ARG,
    ciphertext: str | None = typer.Argument(
        None, help="KEM ciphertext, base64; else --in FILE or stdin (base64 text)."
    ),
    in_file: Path | None = IN_OPT,
    key_version: int | None = VERSION_OPT,
    allow_compromised: bool = ALLOW_COMPROMISED_OPT,
) -> None:
    """Recover a KEM shared secret; prints it in base64."""
    state = get_state(ctx)
    ct = _b64(read_text_arg(ciphertext, in_file, "CIPHERTEXT"), "CIPHERTEXT")
    with state.client() as kk:
        res = kk.decapsulate(key, ct, key_version=key_version,
                             allow_compromised=allow_compromised)
    if state.json:
        emit_json(res)
    else:
        typer.echo(_b64_text(res.shared_secret))


def random(
    ctx: typer.Context,
    length: int = typer.Argument(..., min=1, max=65536, help="Number of bytes, 1..65536."),
    out: Path | None = typer.Option(None, "--out", dir_okay=False, help="Raw bytes to FILE."),
    hex_: bool = typer.Option(False, "--hex", help="Print hex instead of base64."),
) -> None:
    """Random bytes from the server: base64 (or --hex) on stdout, or raw to --out."""
    state = get_state(ctx)
    with state.client() as kk:
        data = kk.random(length)
    if out is not None:
        out.write_bytes(data)
    elif state.json:
        emit_json({"bytes": data})
    else:
        typer.echo(data.hex() if hex_ else _b64_text(data))


def register(app: typer.Typer) -> None:
    for fn, name in (
        (encrypt, "encrypt"),
        (decrypt, "decrypt"),
        (data_key, "data-key"),
        (sign, "sign"),
        (verify, "verify"),
        (mac, "mac"),
        (verify_mac, "verify-mac"),
        (public_key, "public-key"),
        (encapsulate, "encapsulate"),
        (decapsulate, "decapsulate"),
        (random, "random"),
    ):
        app.command(name)(fn)
