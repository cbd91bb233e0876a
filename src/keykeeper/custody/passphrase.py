"""Passphrase seal: the root key wrapped under a key derived with Argon2id.

Argon2id parameters follow RFC 9106 §4, second recommended option (t=3
passes, m=64 MiB, p=4 lanes, 128-bit salt, 256-bit tag), because the first
option's 2 GiB is more than a small server should commit. The derived key wraps
the 256-bit root key with AES-256-GCM; the associated data names the format, so
a wrong passphrase or an edited blob fails to unwrap. Argon2id costs about 0.3 s
here: it runs at init and unseal only, never on the request path.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

from keykeeper.crypto.aead import aead_open, aead_seal
from keykeeper.errors import DecryptionFailed, InvalidArgument

__all__ = ["Argon2Params", "SealedRoot", "seal_root_key", "unseal_root_key"]

_AAD = b"keykeeper/seal/passphrase/v1"
MIN_PASSPHRASE_LENGTH = 12
MAX_PASSPHRASE_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Argon2Params:
    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4
    salt: bytes = b""

    def derive(self, passphrase: str) -> bytes:
        return bytes(hash_secret_raw(
            secret=passphrase.encode("utf-8"), salt=self.salt, time_cost=self.time_cost,
            memory_cost=self.memory_cost_kib, parallelism=self.parallelism, hash_len=32,
            type=Type.ID,
        ))


@dataclass(frozen=True, slots=True)
class SealedRoot:
    """What the store keeps of the root key: KDF parameters and the wrapped key."""

    params: Argon2Params
    wrapped_root_key: bytes

    def to_json(self) -> dict[str, object]:
        return {
            "kdf": "argon2id", "time_cost": self.params.time_cost,
            "memory_cost_kib": self.params.memory_cost_kib,
            "parallelism": self.params.parallelism,
            "salt": base64.b64encode(self.params.salt).decode(),
            "wrapped_root_key": base64.b64encode(self.wrapped_root_key).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SealedRoot:
        params = Argon2Params(
            time_cost=int(str(data["time_cost"])),
            memory_cost_kib=int(str(data["memory_cost_kib"])),
            parallelism=int(str(data["parallelism"])),
            salt=base64.b64decode(str(data["salt"])),
        )
        return cls(params=params, wrapped_root_key=base64.b64decode(str(data["wrapped_root_key"])))


def seal_root_key(root_key: bytes, passphrase: str) -> SealedRoot:
    """Wrap ``root_key`` (32 bytes) under ``passphrase``; InvalidArgument if it is too short."""
    if not MIN_PASSPHRASE_LENGTH <= len(passphrase) <= MAX_PASSPHRASE_LENGTH:
        raise InvalidArgument(f"passphrase must be {MIN_PASSPHRASE_LENGTH} to "
                              f"{MAX_PASSPHRASE_LENGTH} characters")
    params = Argon2Params(salt=os.urandom(16))
    return SealedRoot(params=params, wrapped_root_key=aead_seal(params.derive(passphrase),
                                                                root_key, _AAD))


def unseal_root_key(sealed: SealedRoot, passphrase: str) -> bytes:
    """Return the 32-byte root key; InvalidArgument if the passphrase is wrong."""
    try:
        return aead_open(sealed.params.derive(passphrase), sealed.wrapped_root_key, _AAD)
    except DecryptionFailed:
        raise InvalidArgument("unseal failed: the passphrase is not correct") from None
