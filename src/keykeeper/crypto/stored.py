"""Stored data (purpose ``store``): KMIP Secret Data and Opaque Objects kept as bytes.

Such an object is not a key: keykeeper keeps its bytes wrapped under the namespace KEK
exactly as it keeps key material (one key store, issue 5 §3), serves them back to a
caller allowed to export them, and runs no cryptographic operation with them: every
operation of :class:`StoredDataHandle` raises FailedPrecondition, and the service layer
refuses them earlier with its wrong-purpose error. They are registered, never generated.
"""

from __future__ import annotations

from typing import Final, NoReturn

from keykeeper.crypto.base import KeyHandle, require_bytes
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import InvalidArgument

__all__ = ["MAX_STORED_BYTES", "StoredDataHandle", "check_stored_data", "refuse_generation"]

MAX_STORED_BYTES: Final = 65536
"""The largest stored object, in bytes (64 KiB)."""


def check_stored_data(spec: AlgorithmSpec, data: object) -> bytes:
    """``data`` as bytes when it may be stored as ``spec`` (1 to :data:`MAX_STORED_BYTES`
    bytes); InvalidArgument otherwise (the message gives the size, never the bytes)."""
    value = require_bytes("stored data", data)
    if not 1 <= len(value) <= MAX_STORED_BYTES:
        raise InvalidArgument(f"{spec.name} holds 1 to {MAX_STORED_BYTES} bytes, not "
                              f"{len(value)}")
    return value


def refuse_generation(spec: AlgorithmSpec) -> NoReturn:
    """Stored data comes from its owner (KMIP Register, or an import): InvalidArgument."""
    raise InvalidArgument(f"{spec.name} objects hold data a client registers (KMIP "
                          "Register or an import of format 'raw'); keykeeper does not "
                          "generate them")


class StoredDataHandle(KeyHandle):
    """The bytes of a Secret Data or Opaque Object; no operation (FailedPrecondition).
    ``crypto/wrap.py`` ``exportable_material`` gives them back as ``(bytes, "raw")``."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, material: bytes) -> None:
        super().__init__(spec)
        self._key = check_stored_data(spec, material)
