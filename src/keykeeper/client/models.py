"""Typed results of the keykeeper REST API (v1), as frozen msgspec Structs.

Binary fields are ``bytes`` (the SDK does the base64). Times are timezone-aware
:class:`datetime.datetime` values in UTC. Fields the server adds later are
ignored, so an older SDK keeps working against a newer server.

Results that hold secrets (:class:`DataKey`, :class:`DecryptResult`,
:class:`InitResult`, :class:`Encapsulation`, :class:`Decapsulation`) hide them
from ``repr`` so they do not end up in logs by accident.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = [
    "DataKey",
    "Decapsulation",
    "DecryptItem",
    "DecryptResult",
    "Encapsulation",
    "EncryptItem",
    "EncryptResult",
    "Health",
    "InitResult",
    "ItemError",
    "Key",
    "KeyPage",
    "KeyVersion",
    "MacResult",
    "PublicKey",
    "RekeyStatus",
    "RekeyUpdate",
    "SignResult",
    "VerifyResult",
]


def _hidden(value: bytes | str | None) -> str:
    return "None" if value is None else f"<hidden {len(value)} bytes>"


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/sys/health``: whether the server is initialized and sealed; ``status`` is
    "active", "sealed" or "uninitialized"; ``scheduler`` is this node's part in the
    lifecycle scheduler: "leader", "standby" or "disabled"."""

    initialized: bool
    sealed: bool
    version: str = ""
    status: str = ""
    scheduler: str = ""
    node_id: str = ""
    seal_type: str | None = None    # passphrase | shamir | pkcs11 (None before init)
    progress: int | None = None     # shamir, sealed: shares given to this unseal attempt
    threshold: int | None = None    # shamir, sealed: shares needed
    nonce: str | None = None        # shamir, sealed: names the unseal attempt
    seal_error: str | None = None   # pkcs11, sealed: why the auto-unseal failed


class InitResult(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/sys/init``: the first root token and the unseal material, shown once:
    ``unseal_passphrase`` (passphrase seal) or ``keys``, the base64 shares (shamir); a
    pkcs11 seal has none."""

    root_token: str
    unseal_passphrase: str | None = None
    seal_type: str = "passphrase"
    keys: list[str] = []
    secret_shares: int | None = None
    secret_threshold: int | None = None

    def __repr__(self) -> str:
        return (f"InitResult(seal_type={self.seal_type!r}, root_token=<hidden>, "
                "unseal material=<hidden>)")


class GeneratedRoot(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/sys/generate-root``: a recovery root token, shown once; under shamir
    ``complete`` is False (no token) until the threshold of shares is in."""

    expires_in: int  # seconds
    root_token: str | None = None
    complete: bool = True
    progress: int | None = None
    threshold: int | None = None
    nonce: str | None = None

    def __repr__(self) -> str:
        return f"GeneratedRoot(root_token=<hidden>, expires_in={self.expires_in})"


class Key(msgspec.Struct, frozen=True, kw_only=True):
    """A managed key. ``rotation_period`` is in seconds; ``state`` is one of
    pre-active, active, suspended, deactivated, compromised, destroyed,
    destroyed-compromised or pending-destruction.

    Lifecycle: ``min_decryption_version`` 0 lets every version decrypt;
    ``min_encryption_version`` 0 lets only the primary version encrypt (Vault's rules).
    ``usage_limit`` (protect operations per version), ``usage_rotate_fraction``,
    ``rotation_threshold`` and the usage periods (seconds, SP 800-57) are the effective
    values: the key's own, else its namespace's, else the defaults."""

    id: str
    name: str
    namespace: str
    purpose: str
    algorithm: str
    state: str
    primary_version: int
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    exportable: bool = False
    protection: str | None = None
    rotation_period: int | None = None
    next_rotation_time: datetime | None = None
    destruction_time: datetime | None = None
    compromised_at: datetime | None = None
    compromise_reason: str | None = None
    activation_date: datetime | None = None
    deactivation_date: datetime | None = None
    min_encryption_version: int = 0
    min_decryption_version: int = 0
    usage_limit: int | None = None
    usage_rotate_fraction: float | None = None
    rotation_threshold: int | None = None
    originator_usage_period: int | None = None
    recipient_usage_period: int | None = None
    rotation_reason: str | None = None
    origin: str = "generated"              # "external": material imported


class KeyPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of ``GET /v1/keys``; ``next_page_token`` is None on the last page."""

    keys: list[Key]
    next_page_token: str | None = None


class KeyVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One generation of a key's material: ``protect_count`` protect operations so far,
    and the ends of its originator (may protect) and recipient (may process) usage
    periods."""

    version: int
    state: str
    created_at: datetime
    destroyed_at: datetime | None = None
    protect_count: int = 0
    originator_usage_end: datetime | None = None
    recipient_usage_end: datetime | None = None
    deactivated_at: datetime | None = None
    compromised_at: datetime | None = None
    compromise_reason: str | None = None
    in_hsm: bool = False          # the material is an object in the server's PKCS#11 token
    public_only: bool = False     # an imported public key alone: verify or encrypt only


class _Versions(msgspec.Struct, frozen=True):
    versions: list[KeyVersion]


class EncryptResult(msgspec.Struct, frozen=True, kw_only=True):
    """An opaque ciphertext string and the key version that made it."""

    ciphertext: str
    key_version: int


class DecryptResult(msgspec.Struct, frozen=True, kw_only=True):
    """Recovered plaintext (hidden from ``repr``) and the key version used."""

    plaintext: bytes
    key_version: int

    def __repr__(self) -> str:
        return f"DecryptResult(plaintext={_hidden(self.plaintext)}, key_version={self.key_version})"


class EncryptItem(msgspec.Struct, frozen=True, kw_only=True):
    """One item of :meth:`Client.encrypt_batch` when items need their own context."""

    plaintext: bytes
    context: dict[str, str] | None = None
    key_version: int | None = None

    def __repr__(self) -> str:
        return f"EncryptItem(plaintext={_hidden(self.plaintext)}, context={self.context!r})"


class DecryptItem(msgspec.Struct, frozen=True, kw_only=True):
    """One item of :meth:`Client.decrypt_batch` when items need their own context."""

    ciphertext: str
    context: dict[str, str] | None = None


class ItemError(msgspec.Struct, frozen=True, kw_only=True):
    """A batch item that failed; the other items of the batch are unaffected."""

    code: str
    detail: str = ""

    def to_exception(self) -> Exception:
        """The :mod:`keykeeper.errors` exception this item would have raised alone."""
        from keykeeper.errors import error_for_code

        return error_for_code(self.code)(self.detail or None)


class DataKey(msgspec.Struct, frozen=True, kw_only=True):
    """A fresh data-encryption key: ``ciphertext`` is it wrapped by the key (store
    this); ``plaintext`` (None unless requested) is the raw key, hidden from ``repr``."""

    ciphertext: str
    key_version: int
    plaintext: bytes | None = None

    def __repr__(self) -> str:
        return (
            f"DataKey(ciphertext={self.ciphertext!r}, key_version={self.key_version}, "
            f"plaintext={_hidden(self.plaintext)})"
        )


class SignResult(msgspec.Struct, frozen=True, kw_only=True):
    """A signature (DER or IEEE P1363 as requested) and the key version that made it."""

    signature: bytes
    key_version: int


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a signature or MAC is valid, and the key version checked."""

    valid: bool
    key_version: int

    def __bool__(self) -> bool:
        return self.valid


class MacResult(msgspec.Struct, frozen=True, kw_only=True):
    """A MAC tag and the key version that made it."""

    mac: bytes
    key_version: int


class PublicKey(msgspec.Struct, frozen=True, kw_only=True):
    """A PEM-encoded public key (SubjectPublicKeyInfo) of one key version."""

    public_key: str
    key_version: int
    algorithm: str = ""


class Encapsulation(msgspec.Struct, frozen=True, kw_only=True):
    """A KEM shared secret (hidden from ``repr``) and its encapsulation ciphertext."""

    shared_secret: bytes
    ciphertext: bytes
    key_version: int

    def __repr__(self) -> str:
        return (
            f"Encapsulation(shared_secret={_hidden(self.shared_secret)}, "
            f"ciphertext=<{len(self.ciphertext)} bytes>, key_version={self.key_version})"
        )


class Decapsulation(msgspec.Struct, frozen=True, kw_only=True):
    """A KEM shared secret recovered from a ciphertext (hidden from ``repr``)."""

    shared_secret: bytes
    key_version: int

    def __repr__(self) -> str:
        return (
            f"Decapsulation(shared_secret={_hidden(self.shared_secret)}, "
            f"key_version={self.key_version})"
        )


class _Random(msgspec.Struct, frozen=True):
    data: bytes = msgspec.field(name="bytes")


class _BatchItem(msgspec.Struct, frozen=True, kw_only=True):
    ciphertext: str | None = None
    plaintext: bytes | None = None
    key_version: int | None = None
    error: ItemError | None = None


class _BatchItems(msgspec.Struct, frozen=True):
    items: list[_BatchItem]


class RekeyStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``/v1/sys/rekey/init``: the rekey in progress (``nonce``), the current and new seal
    types, and how much current material is in (``progress`` of ``required``)."""

    started: bool
    nonce: str = ""
    seal_type: str = ""
    new_seal_type: str = ""
    progress: int = 0
    required: int = 0
    new_shares: int | None = None
    new_threshold: int | None = None


class RekeyUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/sys/rekey/update``: the progress, or once ``complete`` the new material,
    shown once (``keys``: new shares; ``unseal_passphrase``: a generated passphrase)."""

    complete: bool
    nonce: str = ""
    seal_type: str = ""
    progress: int = 0
    required: int = 0
    keys: list[str] = []
    unseal_passphrase: str | None = None

    def __repr__(self) -> str:
        return (f"RekeyUpdate(complete={self.complete}, progress={self.progress}, "
                f"required={self.required}, material=<hidden>)")
