"""msgspec structs of the ``/v1/sys`` routes: health, init, unseal, seal, generate-root and
rekey (docs/seal.md). Shares travel as standard base64 strings; material appears only in
the answers that create it, once."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

Count = Annotated[int, Meta(ge=1, le=255)]
Secret = Annotated[str, Meta(max_length=4096)]


class Health(Struct):
    initialized: bool
    sealed: bool
    version: str
    status: str = "active"          # active | sealed | uninitialized
    scheduler: str = "disabled"     # leader | standby | disabled (docs/scheduler.md)
    node_id: str = ""
    seal_type: str | None = None    # passphrase | shamir | pkcs11 (absent before init)
    progress: int | None = None     # shamir, sealed: shares given to this attempt
    threshold: int | None = None    # shamir, sealed: shares needed
    nonce: str | None = None        # shamir, sealed: names this unseal attempt
    seal_error: str | None = None   # pkcs11, sealed: why the auto-unseal failed


class InitRequest(Struct, forbid_unknown_fields=True):
    seal: str = "passphrase"        # passphrase | shamir | pkcs11
    passphrase: Secret | None = None
    secret_shares: Count | None = None      # shamir: N (5)
    secret_threshold: Count | None = None   # shamir: M (3)


class InitResponse(Struct, omit_defaults=True):
    root_token: str
    seal_type: str = "passphrase"
    unseal_passphrase: str | None = None    # passphrase seal
    keys: list[str] = []                    # shamir: the base64 shares, shown once
    secret_shares: int | None = None
    secret_threshold: int | None = None


class UnsealRequest(Struct, forbid_unknown_fields=True):
    """Exactly one of ``passphrase``, ``key`` (one base64 share) or ``reset``; under
    pkcs11 an empty body retries a failed auto-unseal."""

    passphrase: Secret | None = None
    key: Secret | None = None
    nonce: str | None = None        # shamir: the attempt the share is for (optional)
    reset: bool = False


class GenerateRootRequest(Struct, forbid_unknown_fields=True):
    passphrase: Secret | None = None
    key: Secret | None = None
    nonce: str | None = None
    reset: bool = False


class GenerateRootResponse(Struct, omit_defaults=True):
    expires_in: int                 # seconds
    complete: bool                  # False while shares are still being given
    root_token: str | None = None   # once the material is complete
    progress: int | None = None
    threshold: int | None = None
    nonce: str | None = None


class RekeyInitRequest(Struct, forbid_unknown_fields=True):
    seal: str | None = None         # the new seal type (default: the current one)
    secret_shares: Count | None = None
    secret_threshold: Count | None = None
    passphrase: Secret | None = None    # the new passphrase (generated when absent)


class RekeyStatus(Struct):
    started: bool
    nonce: str
    seal_type: str                  # the current seal
    new_seal_type: str
    progress: int                   # current material given so far
    required: int                   # current material needed: M shares, 1, or 0 (pkcs11)
    new_shares: int | None = None
    new_threshold: int | None = None


class RekeyUpdateRequest(Struct, forbid_unknown_fields=True):
    nonce: str
    passphrase: Secret | None = None    # the current passphrase
    key: Secret | None = None           # one current share


class RekeyUpdateResponse(Struct, omit_defaults=True):
    complete: bool
    nonce: str = ""
    seal_type: str = ""             # after completion: the new seal
    progress: int = 0
    required: int = 0
    keys: list[str] = []            # the new shares, shown once
    unseal_passphrase: str | None = None    # a generated new passphrase, shown once
