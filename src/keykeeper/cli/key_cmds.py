"""``keykeeper key ...``: create, list, show and manage the lifecycle of keys."""

from __future__ import annotations

from typing import Any

import typer

from keykeeper.cli._state import (
    confirm,
    emit_fields,
    emit_json,
    emit_key,
    emit_table,
    get_state,
    option_value,
    parse_pairs,
    shown_labels,
)
from keykeeper.client import Key, KeyVersion

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

KEY_ARG = typer.Argument(..., help="Key id, namespace:name, or name (namespace default).")


def _life(flag: str, rule: str) -> Any:
    return typer.Option(None, flag, help=f"{rule}; 'none' clears it")


def _period(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Key name, or namespace:name."),
    namespace: str | None = typer.Option(None, "--namespace", "-n",
                                         help="Namespace [default: default]."),
    purpose: str | None = typer.Option(None, "--purpose", help="encrypt | sign | mac | kem"),
    algorithm: str | None = typer.Option(
        None, "--algorithm",
        help="AES_256_GCM (default for encrypt), AES_128_GCM, CHACHA20_POLY1305, "
        "RSA_OAEP_3072_SHA256, RSA_OAEP_4096_SHA256, ECDSA_P256_SHA256 (default for sign), "
        "ECDSA_P384_SHA384, ECDSA_P521_SHA512, ED25519, RSA_PSS_3072_SHA256, "
        "RSA_PSS_4096_SHA256, RSA_PKCS1_3072_SHA256, RSA_PKCS1_4096_SHA256, ML_DSA_44, "
        "ML_DSA_65, ML_DSA_87, HMAC_SHA256 (default for mac), HMAC_SHA384, HMAC_SHA512, "
        "ML_KEM_768 (default for kem), ML_KEM_1024; see docs/algorithms.md"),
    rotation_period: str | None = typer.Option(
        None, "--rotation-period",
        help="Seconds, or e.g. 90d, 12h (at least 1h) [default: the namespace's]."
    ),
    label: list[str] | None = typer.Option(None, "--label", help="k=v, repeatable."),
    description: str | None = typer.Option(None, "--description"),
    exportable: bool | None = typer.Option(None, "--exportable/--not-exportable"),
    activation_date: str | None = typer.Option(
        None, "--activation-date",
        help="RFC 3339, e.g. 2027-01-31T00:00:00Z; in the future: pre-active until then."),
    deactivation_date: str | None = typer.Option(
        None, "--deactivation-date", help="RFC 3339; after the activation date."),
    usage_limit: int | None = typer.Option(
        None, "--usage-limit", min=1,
        help="Protect operations per version (AES-GCM, ChaCha20: at most 2^32, the default)."),
    usage_rotate_fraction: float | None = typer.Option(
        None, "--usage-rotate-fraction", help="Rotate at this fraction of the limit (0.9)."),
    originator_usage_period: str | None = typer.Option(
        None, "--originator-usage-period",
        help="May protect for this long, e.g. 730d [default: namespace's, SP 800-57's]."),
    recipient_usage_period: str | None = typer.Option(
        None, "--recipient-usage-period", help="May process for this long, e.g. 1825d."),
    origin: str | None = typer.Option(
        None, "--origin", help="external: no material until imported (key import)."),
    protection: str | None = typer.Option(
        None, "--protection", help="software (default) or hsm: made and used in the "
        "server's PKCS#11 token (docs/hsm.md)."),
) -> None:
    """Create a key."""
    if namespace is None and ":" in name:
        namespace, name = name.split(":", 1)
    with get_state(ctx).client() as kk:
        key = kk.create_key(
            name,
            namespace=namespace,
            purpose=purpose,
            algorithm=algorithm,
            rotation_period=_period(rotation_period),
            labels=parse_pairs(label, "--label"),
            description=description,
            exportable=exportable,
            activation_date=activation_date,
            deactivation_date=deactivation_date,
            usage_limit=usage_limit,
            usage_rotate_fraction=usage_rotate_fraction,
            originator_usage_period=_period(originator_usage_period),
            recipient_usage_period=_period(recipient_usage_period),
            origin=origin,
            protection=protection,
        )
    emit_key(get_state(ctx), key)


@app.command("list")
def list_(
    ctx: typer.Context,
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="Only this namespace."),
    state_: str | None = typer.Option(None, "--state"),
    purpose: str | None = typer.Option(None, "--purpose"),
    label: list[str] | None = typer.Option(None, "--label", help="k=v, repeatable; all match."),
    page_size: int | None = typer.Option(None, "--page-size", min=1),
    page_token: str | None = typer.Option(
        None, "--page-token", help="Fetch one page from here (default: every page)."
    ),
) -> None:
    """List keys (every page, unless --page-size or --page-token asks for one page)."""
    state = get_state(ctx)
    labels = parse_pairs(label, "--label")
    next_token: str | None = None
    with state.client() as kk:
        if page_size is not None or page_token is not None:
            page = kk.list_keys(
                namespace=namespace,
                state=state_,
                purpose=purpose,
                labels=labels,
                page_size=page_size,
                page_token=page_token,
            )
            keys, next_token = page.keys, page.next_page_token
        else:
            keys = list(
                kk.iter_keys(namespace=namespace, state=state_, purpose=purpose, labels=labels)
            )
    if state.json:
        doc: dict[str, object] = {"keys": keys}
        if next_token:
            doc["next_page_token"] = next_token
        emit_json(doc)
        return
    _key_table(keys)
    if next_token:
        typer.echo(f"next page: --page-token {next_token}")


def _key_table(keys: list[Key]) -> None:
    emit_table(
        ["name", "id", "purpose", "algorithm", "state", "version", "labels"],
        (
            (
                f"{k.namespace}:{k.name}",
                k.id,
                k.purpose,
                k.algorithm,
                k.state,
                k.primary_version,
                shown_labels(k.labels),
            )
            for k in keys
        ),
    )


@app.command("show")
def show(ctx: typer.Context, key: str = KEY_ARG) -> None:
    """Show one key."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.get_key(key))


@app.command("update")
def update(
    ctx: typer.Context,
    key: str = KEY_ARG,
    description: str | None = typer.Option(None, "--description"),
    label: list[str] | None = typer.Option(
        None, "--label", help="k=v, repeatable; replaces all labels."
    ),
    clear_labels: bool = typer.Option(False, "--clear-labels", help="Remove every label."),
    rotation_period: str | None = _life("--rotation-period", "e.g. 90d (at least 1h)"),
    next_rotation_time: str | None = _life("--next-rotation-time", "RFC 3339, in the future"),
    min_encryption_version: str | None = _life(
        "--min-encryption-version", "0: only the primary version encrypts"),
    min_decryption_version: str | None = _life(
        "--min-decryption-version", "0: every version decrypts"),
    usage_limit: str | None = _life("--usage-limit", "protect operations per version"),
    usage_rotate_fraction: str | None = _life("--usage-rotate-fraction", "0.01 to 1 (0.9)"),
    originator_usage_period: str | None = _life("--originator-usage-period", "e.g. 730d"),
    recipient_usage_period: str | None = _life("--recipient-usage-period", "e.g. 1825d"),
    activation_date: str | None = _life("--activation-date", "only while pre-active"),
    deactivation_date: str | None = _life("--deactivation-date", "RFC 3339"),
) -> None:
    """Change a key's description, labels and lifecycle settings (a lifecycle option
    given as 'none' clears it: back to the namespace's or the default)."""
    labels = parse_pairs(label, "--label")
    if clear_labels:
        if labels:
            raise typer.BadParameter("--clear-labels with --label", param_hint="--clear-labels")
        labels = {}
    raw = {"rotation_period": (rotation_period, "period"),
           "next_rotation_time": (next_rotation_time, "time"),
           "min_encryption_version": (min_encryption_version, "int"),
           "min_decryption_version": (min_decryption_version, "int"),
           "usage_limit": (usage_limit, "int"),
           "usage_rotate_fraction": (usage_rotate_fraction, "float"),
           "originator_usage_period": (originator_usage_period, "period"),
           "recipient_usage_period": (recipient_usage_period, "period"),
           "activation_date": (activation_date, "time"),
           "deactivation_date": (deactivation_date, "time")}
    lifecycle: dict[str, Any] = {
        name: option_value(value, kind, "--" + name.replace("_", "-"))
        for name, (value, kind) in raw.items() if value is not None}
    if description is None and labels is None and not lifecycle:
        raise typer.BadParameter("nothing to change", param_hint="--description/--label")
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.update_key(key, description=description, labels=labels,
                                               **lifecycle))


@app.command("activate")
def activate(ctx: typer.Context, key: str = KEY_ARG) -> None:
    """Activate a pre-active key now."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.activate_key(key))


@app.command("trim")
def trim(
    ctx: typer.Context,
    key: str = KEY_ARG,
    min_available_version: int = typer.Option(
        ..., "--min-available-version", min=1,
        help="Crypto-erase every version below this one (at most min_decryption_version)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Crypto-erase a key's old versions (cannot be undone; dual control by default)."""
    confirm(yes, f"Destroy every version of {key} below {min_available_version}? Data they "
            "encrypted becomes unrecoverable", "trimming versions cannot be undone")
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.trim_key(key, min_available_version))


@app.command("versions")
def versions(ctx: typer.Context, key: str = KEY_ARG) -> None:
    """List a key's versions."""
    state = get_state(ctx)
    with state.client() as kk:
        found = kk.list_versions(key)
    if state.json:
        emit_json({"versions": found})
    else:
        emit_table(
            ["version", "state", "material", "created", "protects", "protect until",
             "process until", "destroyed"],
            ((v.version, v.state, _material(v), v.created_at, v.protect_count,
              v.originator_usage_end, v.recipient_usage_end, v.destroyed_at) for v in found),
        )


def _material(v: KeyVersion) -> str:
    """Where a version's material lives: in the HSM, software (wrapped in the store), a
    public key alone (imported), or none left (destroyed)."""
    if v.destroyed_at is not None:
        return "-"
    return "hsm" if v.in_hsm else "public key only" if v.public_only else "software"


@app.command("rotate")
def rotate(ctx: typer.Context, key: str = KEY_ARG) -> None:
    """Make a new primary version."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.rotate_key(key))


@app.command("disable")
def disable(ctx: typer.Context, key: str = KEY_ARG) -> None:
    """Suspend every use of a key."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.disable_key(key))


@app.command("enable")
def enable(ctx: typer.Context, key: str = KEY_ARG) -> None:
    """Re-enable a disabled key."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.enable_key(key))


@app.command("schedule-destruction")
def schedule_destruction(
    ctx: typer.Context,
    key: str = KEY_ARG,
    pending_days: int | None = typer.Option(
        None, "--pending-days", min=7, max=30, help="Days to wait, 7 to 30 [default: 30]."
    ),
) -> None:
    """Schedule a key's destruction after a waiting period."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.schedule_destruction(key, pending_days=pending_days))


@app.command("cancel-destruction")
def cancel_destruction(ctx: typer.Context, key: str = KEY_ARG) -> None:
    """Cancel a scheduled destruction."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.cancel_destruction(key))


@app.command("compromise")
def compromise(
    ctx: typer.Context,
    key: str = KEY_ARG,
    reason: str = typer.Option(..., "--reason", help="Why the key is compromised."),
    compromise_time: str | None = typer.Option(
        None, "--compromise-time", help="When it happened (RFC 3339; default now)."),
) -> None:
    """Mark a key compromised (irreversible)."""
    with get_state(ctx).client() as kk:
        emit_key(get_state(ctx), kk.compromise_key(key, reason,
                                                   compromise_time=compromise_time))


@app.command("destroy-version")
def destroy_version(
    ctx: typer.Context,
    key: str = KEY_ARG,
    version: int = typer.Argument(..., min=1),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Destroy one key version's material now (crypto-erasure: it cannot be undone)."""
    confirm(yes, f"Destroy version {version} of {key}? Data it encrypted becomes "
            "unrecoverable", "destroying a version cannot be undone")
    state = get_state(ctx)
    with state.client() as kk:
        v = kk.destroy_version(key, version)
    if state.json:
        emit_json(v)
    else:
        emit_fields(
            [
                ("version", v.version),
                ("state", v.state),
                ("created", v.created_at),
                ("destroyed", v.destroyed_at),
            ]
        )
