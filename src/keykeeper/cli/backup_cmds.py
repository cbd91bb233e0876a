"""``keykeeper backup ...``: create, verify, restore archives; the signing key; custodian
key pairs (docs/backup-format.md, operator guide "Backup and restore").

``create`` streams the archive into a temporary file beside ``--out``, checks it as it
arrives, fsyncs it, renames it into place and fsyncs the directory: an archive broken off
part-way is never left at ``--out``. ``verify`` runs offline (keykeeper.backup is pure):
structure, manifest, digests and signature (pinned with ``--signer``), and with shares or
custodian private keys every wrapped material opening. ``restore`` recovers the backup
key locally from custodian private keys (they never leave this machine) and sends only
it; shares go to the server, which combines them.

Shares come from ``--share`` (repeated; visible to ``ps`` and shell history), from
``--share-file`` (one per line), from stdin when it is not a terminal, or from hidden
prompts, one per share up to the archive's threshold.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import msgspec
import typer

from keykeeper.backup import (
    ArchiveReader,
    generate_custodian_key,
    load_private_keys,
    load_public_key,
    load_signer,
    verify_archive,
)
from keykeeper.cli._output import output_file
from keykeeper.cli._state import emit_fields, emit_json, get_state, stderr
from keykeeper.errors import AlreadyExists, InvalidArgument

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

_SHARE_HELP = "A share (repeat up to the threshold; prefer --share-file or the prompt)."
_SHARE_FILE_HELP = "File with shares, one per line."
_CUSTODIAN_PRIVATE_HELP = ("A custodian's private key file (PEM; repeat up to the custodian "
                           "threshold). The backup key is recovered here; the keys never "
                           "leave this machine.")
_SIGNER_HELP = ("The signer the archive must be signed by: its PEM public key file "
                "(keykeeper backup signing-key) or fingerprint sha256:<hex>.")


def _signer(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        return load_signer(path.read_bytes())
    return load_signer(value)


def _share_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _given_shares(shares: list[str] | None, share_file: Path | None) -> list[str]:
    out = [s.strip() for s in shares or [] if s.strip()]
    if share_file is not None:
        out += _share_lines(share_file.read_text(encoding="utf-8"))
    return out


def _prompted_shares(archive: Path) -> list[str]:
    """Shares from stdin (not a terminal: every non-empty line) or hidden prompts, as many
    as the archive's threshold."""
    if not sys.stdin.isatty():
        shares = _share_lines(sys.stdin.read())
        if not shares:
            raise typer.BadParameter("no shares: give --share, --share-file, --custodian-key, "
                                     "or shares on stdin")
        return shares
    with archive.open("rb") as stream:
        block = ArchiveReader(stream).header.custody.get("shares")
    if not isinstance(block, dict):
        raise typer.BadParameter("this archive was not split into shares: give "
                                 "--custodian-key")
    threshold = int(block.get("threshold") or 1)
    return [str(typer.prompt(f"Share {i} of {threshold}", hide_input=True, err=True)).strip()
            for i in range(1, threshold + 1)]


def _private_keys(paths: list[Path] | None) -> list[bytes]:
    return [p.read_bytes() for p in paths or []]


@app.command("create")
def create(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Archive file to write."),
    shares: int | None = typer.Option(None, "--shares", help="Split the backup key into N "
                                      "Shamir shares (shown once)."),
    threshold: int | None = typer.Option(None, "--threshold",
                                         help="Shares needed to open it (default 2)."),
    custodian_key: list[Path] | None = typer.Option(
        None, "--custodian-key", help="A custodian's public key file (PEM: RSA-4096, or "
        "X25519 + ML-KEM-768); repeat for each custodian."),
    custodian_threshold: int | None = typer.Option(
        None, "--custodian-threshold", help="Custodians needed to open it (default 2)."),
    key: list[str] | None = typer.Option(
        None, "--key", help="Back up only this key (id, namespace:name or name); repeat."),
) -> None:
    """Back up every key (or the keys named) to an encrypted archive for custodians."""
    state = get_state(ctx)
    publics = [p.read_bytes() for p in custodian_key or []]
    with state.client() as kk, output_file(out, binary=True) as stream:
        made = kk.backup_create(stream, shares=shares, threshold=threshold,
                                custodian_keys=publics, custodian_threshold=custodian_threshold,
                                keys=key or None)
    if state.json:
        emit_json({"file": str(out), **_builtins(made)})
        return
    emit_fields([("backup id", made.backup_id), ("file", str(out)), ("scope", made.scope),
                 ("records", made.records), ("signer", made.signer),
                 ("shares", f"{len(made.shares)} (threshold {made.threshold}: any "
                  f"{made.threshold} of them open the archive)" if made.shares else None),
                 ("custodians", f"{made.custodians} (threshold {made.custodian_threshold})"
                  if made.custodians else None)])
    for i, share in enumerate(made.shares, start=1):
        typer.echo(f"share {i}  {share}")
    if made.shares:
        stderr("Each share is shown once: give one to each custodian.")


def _builtins(value: object) -> dict[str, object]:
    built = msgspec.to_builtins(value)
    assert isinstance(built, dict)
    return built


@app.command("verify")
def verify(
    ctx: typer.Context,
    archive: Path = typer.Argument(..., exists=True, dir_okay=False, help="Archive file."),
    signer: str | None = typer.Option(None, "--signer", help=_SIGNER_HELP),
    share: list[str] | None = typer.Option(None, "--share", help=_SHARE_HELP),
    share_file: Path | None = typer.Option(None, "--share-file", help=_SHARE_FILE_HELP),
    custodian_key: list[Path] | None = typer.Option(None, "--custodian-key",
                                                    help=_CUSTODIAN_PRIVATE_HELP),
) -> None:
    """Verify an archive offline, writing nothing: structure, manifest, digests and
    signature; with shares or custodian keys also that every wrapped material opens."""
    state = get_state(ctx)
    shares = _given_shares(share, share_file)
    private = [load_private_keys(k) for k in _private_keys(custodian_key)]
    report = verify_archive(lambda: archive.open("rb"), shares=shares, private_keys=private,
                            signer=_signer(signer))
    if state.json:
        emit_json({"file": str(archive), "valid": True, **report.__dict__})
        return
    emit_fields([("file", str(archive)), ("valid", True), ("backup id", report.backup_id),
                 ("created", report.created_at), ("signer", report.signer),
                 ("signer pinned", signer is not None), ("records", report.records),
                 ("materials", report.materials),
                 ("opened", "yes: every wrapped material opens" if report.opened
                  else "no (give shares or custodian keys to check the materials)"),
                 *_custody_fields(report.custody),
                 *((f"count {t}", n) for t, n in report.counts.items())])


def _custody_fields(custody: dict[str, object]) -> list[tuple[str, object]]:
    """Who can open the archive: its shares (count, threshold) and custodians."""
    out: list[tuple[str, object]] = []
    shares = custody.get("shares")
    if isinstance(shares, dict):
        out.append(("shares", f"{shares.get('count')} (threshold {shares.get('threshold')})"))
    custodians = custody.get("custodians")
    if isinstance(custodians, dict):
        keys = custodians.get("keys")
        count = len(keys) if isinstance(keys, list) else 0
        out.append(("custodians", f"{count} (threshold {custodians.get('threshold')})"))
    return out


@app.command("restore")
def restore(
    ctx: typer.Context,
    archive: Path = typer.Argument(..., exists=True, dir_okay=False, help="Archive file."),
    share: list[str] | None = typer.Option(None, "--share", help=_SHARE_HELP),
    share_file: Path | None = typer.Option(None, "--share-file", help=_SHARE_FILE_HELP),
    custodian_key: list[Path] | None = typer.Option(None, "--custodian-key",
                                                    help=_CUSTODIAN_PRIVATE_HELP),
    signer: str | None = typer.Option(None, "--signer", help=_SIGNER_HELP),
    force: bool = typer.Option(False, "--force", help="Restore into a non-empty instance "
                               "(key data it lacks only; nothing deleted): files a "
                               "dual-control request and prints its id."),
    restore_destroyed: bool = typer.Option(
        False, "--restore-destroyed", help="With --force: also bring back versions this "
        "instance knows as destroyed (audited)."),
    approval_id: str | None = typer.Option(None, "--approval-id", help="Complete an approved "
                                           "forced restore (same archive and options)."),
) -> None:
    """Restore an archive into this instance (empty; or forced, under dual control)."""
    state = get_state(ctx)
    if approval_id is not None and not force:
        raise typer.BadParameter("--approval-id completes a forced restore: add --force")
    private = _private_keys(custodian_key)
    shares = _given_shares(share, share_file)
    if private and shares:
        raise typer.BadParameter("give shares or custodian keys, not both")
    if not private and not shares:
        shares = _prompted_shares(archive)
    pinned = _signer(signer)
    with state.client() as kk:
        result = kk.backup_restore(archive, shares=shares, custodian_keys=private,
                                   signer=pinned, force=force,
                                   restore_destroyed=restore_destroyed,
                                   approval_id=approval_id)
    if state.json:
        emit_json(result)
        return
    emit_fields([("backup id", result.backup_id), ("forced", result.forced),
                 ("archive sha256", result.archive_sha256),
                 ("identity and policy", "restored" if result.identity_restored
                  else "not touched (not an empty instance: key data only)"),
                 *((f"added {t}", n) for t, n in sorted(result.added.items())),
                 *((f"kept {t}", n) for t, n in sorted(result.kept.items())),
                 *((f"skipped {t}", n) for t, n in sorted(result.skipped.items())),
                 ("left out (name taken here)", ", ".join(result.conflicts) or None),
                 ("kept destroyed", ", ".join(result.kept_destroyed) or None),
                 ("restored destroyed", ", ".join(result.restored_destroyed) or None)])


@app.command("signing-key")
def signing_key(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="Write the PEM public key to this file."),
) -> None:
    """This server's backup signing key: pin it (--signer) to verify or restore its
    archives elsewhere."""
    state = get_state(ctx)
    with state.client() as kk:
        key = kk.backup_signing_key()
    if out is not None:
        with output_file(out, binary=False) as stream:
            stream.write(key.public_key)
    if state.json:
        emit_json(key)
    elif out is None:
        typer.echo(key.public_key, nl=False)
        stderr(f"fingerprint: {key.fingerprint}")
    else:
        emit_fields([("fingerprint", key.fingerprint), ("file", str(out))])


@app.command("custodian-keygen")
def custodian_keygen(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Private key file (PEM, mode 0600)."),
    public_out: Path = typer.Option(..., "--public-out", help="Public key file (PEM): give "
                                    "it to whoever makes backups."),
    kind: str = typer.Option("hybrid", "--kind", help="hybrid (X25519 + ML-KEM-768) or rsa "
                             "(RSA-4096)."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files."),
) -> None:
    """Make a custodian key pair, here: the private key (mode 0600) never leaves this
    machine; the public key file is 0644. Existing files are replaced only with --force."""
    state = get_state(ctx)
    if out.resolve() == public_out.resolve():
        raise InvalidArgument("--out and --public-out must be different files")
    existing = [str(p) for p in (out, public_out) if os.path.lexists(p)]
    if existing and not force:
        raise AlreadyExists(f"{', '.join(existing)} already exist(s); add --force to replace "
                            "(a replaced private key no longer opens the archives made for "
                            "its public key)")
    private, public = generate_custodian_key(kind)
    with output_file(out, binary=True) as stream:
        stream.write(private)
        _chmod(stream.fileno(), 0o600)
    with output_file(public_out, binary=True) as stream:
        stream.write(public)
        _chmod(stream.fileno(), 0o644)
    fingerprint = load_public_key(public).fingerprint
    if state.json:
        emit_json({"kind": kind, "fingerprint": fingerprint, "private_key": str(out),
                   "public_key": str(public_out)})
    else:
        emit_fields([("kind", kind), ("fingerprint", fingerprint), ("private key", str(out)),
                     ("public key", str(public_out))])


def _chmod(fd: int, mode: int) -> None:
    """Set a key file's mode (a regular file only: never a device such as /dev/stdout)."""
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fchmod(fd, mode)
