"""The backup key and what is derived from it (docs/backup-format.md, Keys).

A backup key is 32 random bytes (:func:`os.urandom`), fresh for every archive. HKDF-SHA256
(RFC 5869, no salt) derives from it, with ``info`` naming the use and the backup id:

* the material key (AES-256-GCM, NIST SP 800-38D) that wraps every key version's material,
  with associated data binding backup id, namespace, key id, version and algorithm;
* the manifest key (HMAC-SHA256, RFC 2104) that authenticates the manifest line;
* the key check, 32 bytes in the header: a wrong or incomplete set of shares gives another
  check, so it is refused as such before anything else is tried.

The instance's backup signing key is Ed25519 (RFC 8032); its fingerprint is
``sha256:`` and the hex SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keykeeper.backup.errors import ArchiveInvalid

__all__ = ["KEY_SIZE", "BackupKey", "fingerprint", "load_signer", "new_backup_key",
           "verify_signature"]

KEY_SIZE = 32
NONCE_SIZE = 12
_INFO = b"keykeeper/backup/"


def new_backup_key() -> bytes:
    """A fresh 32-byte backup key from the OS CSPRNG."""
    return os.urandom(KEY_SIZE)


def _derive(key: bytes, use: str, backup_id: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_INFO + use.encode() + b"/v1\x00" + backup_id.encode()).derive(key)


def material_aad(backup_id: str, namespace: str, key_id: str, version: int,
                 algorithm: str) -> bytes:
    return b"\x00".join((b"keykeeper/backup/material/v1", backup_id.encode(),
                         namespace.encode(), key_id.encode(), str(version).encode(),
                         algorithm.encode()))


class BackupKey:
    """One archive's backup key and its subkeys. Its ``repr`` shows nothing secret."""

    __slots__ = ("_check", "_mac", "_material", "backup_id", "raw")

    def __init__(self, raw: bytes, backup_id: str) -> None:
        if len(raw) != KEY_SIZE:
            raise ArchiveInvalid("a backup key is 32 bytes")
        self.raw = bytes(raw)
        self.backup_id = backup_id
        self._material = AESGCM(_derive(raw, "material", backup_id))
        self._mac = _derive(raw, "manifest", backup_id)
        self._check = _derive(raw, "check", backup_id)

    def __repr__(self) -> str:
        return f"BackupKey({self.backup_id}, <hidden>)"

    @property
    def check(self) -> bytes:
        """The 32-byte key check the header carries."""
        return self._check

    def matches(self, check: bytes) -> bool:
        """Constant-time comparison of ``check`` with this key's."""
        return hmac.compare_digest(self._check, check)

    def wrap(self, material: bytes, *, namespace: str, key_id: str, version: int,
             algorithm: str) -> bytes:
        """``nonce(12) || ciphertext || tag(16)`` of ``material`` (AES-256-GCM)."""
        nonce = os.urandom(NONCE_SIZE)
        aad = material_aad(self.backup_id, namespace, key_id, version, algorithm)
        return nonce + self._material.encrypt(nonce, material, aad)

    def unwrap(self, blob: bytes, *, namespace: str, key_id: str, version: int,
               algorithm: str) -> bytes:
        """The material of :meth:`wrap`; ArchiveInvalid if it does not open (altered, or
        moved to another key, version or archive)."""
        aad = material_aad(self.backup_id, namespace, key_id, version, algorithm)
        try:
            return self._material.decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], aad)
        except (InvalidTag, ValueError):
            raise ArchiveInvalid(f"the material of key {key_id} version {version} does not "
                                 "open under the backup key (altered or moved)") from None

    def mac(self, data: bytes) -> bytes:
        h = crypto_hmac.HMAC(self._mac, hashes.SHA256())
        h.update(data)
        return h.finalize()

    def verify_mac(self, data: bytes, tag: bytes) -> bool:
        return hmac.compare_digest(self.mac(data), tag)


def fingerprint(public_raw: bytes) -> str:
    """``sha256:<hex>`` of a raw Ed25519 public key (32 bytes)."""
    return "sha256:" + hashlib.sha256(public_raw).hexdigest()


def load_signer(value: str | bytes) -> str:
    """The fingerprint a pin names: a PEM public key (Ed25519, SubjectPublicKeyInfo), or a
    fingerprint ``sha256:<64 hex>`` (the prefix may be left out). ArchiveInvalid
    otherwise."""
    data = value.encode() if isinstance(value, str) else value
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise ArchiveInvalid("the signer is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ArchiveInvalid("the signer must be an Ed25519 public key")
        return fingerprint(key.public_bytes_raw())
    text = data.decode("ascii", "replace").strip()
    text = text.lower().removeprefix("sha256:")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ArchiveInvalid("the signer must be a PEM public key or a fingerprint "
                             "'sha256:' followed by 64 hex digits")
    return "sha256:" + text


def verify_signature(public_raw: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
