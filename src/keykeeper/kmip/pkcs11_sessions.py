"""The live PKCS#11 Correlation Values of one KMIP processor (KMIP 2.1 §6.1.37: "Server
defined Byte String that the client must provide in the next request").

C_Initialize opens one (16 bytes from the operating system's CSPRNG, ``secrets``),
bound to the authenticated principal's name; C_Finalize closes it. A value is good only
for the principal it was issued to: any other caller's lookup finds nothing, exactly as
for a value never issued (no oracle for "live but someone else's").

Held in memory only, and bounded (a client that initialises and never finalises cannot
grow it): at most ``per_principal`` live values per principal -- opening one more closes
that principal's oldest -- and at most ``limit`` in all -- opening one more closes the
oldest of all. A closed or evicted value answers CKR_CRYPTOKI_NOT_INITIALIZED, as after
C_Finalize. A restart, or another node of a cluster, knows none of them.

Inside a KMIP batch with the Batch Error Continuation Option Undo (kmip/undo.py) the
PKCS#11 operation registers the inverse of each change (``close`` an opened value,
``restore`` a closed one) to run if the batch is rolled back; a value a bound evicted for
an undone C_Initialize stays closed.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

__all__ = ["DEFAULT_LIMIT", "DEFAULT_PER_PRINCIPAL", "VALUE_BYTES", "Pkcs11Sessions"]

VALUE_BYTES = 16  # 128 random bits
DEFAULT_LIMIT = 1024
DEFAULT_PER_PRINCIPAL = 16


class Pkcs11Sessions:
    """Correlation Value -> principal name, oldest first; safe to share between threads."""

    def __init__(self, limit: int = DEFAULT_LIMIT,
                 per_principal: int = DEFAULT_PER_PRINCIPAL) -> None:
        if limit < 1 or per_principal < 1:
            raise ValueError("the session bounds must be at least 1")
        self.limit, self.per_principal = limit, per_principal
        self._live: OrderedDict[bytes, str] = OrderedDict()
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._live)

    def open(self, principal: str) -> bytes:
        """A new Correlation Value (``VALUE_BYTES`` random bytes) for ``principal``,
        closing that principal's oldest value, or else the oldest of all, when a bound is
        reached."""
        value = secrets.token_bytes(VALUE_BYTES)
        with self._lock:
            self._add(value, principal)
        return value

    def live(self, value: bytes, principal: str) -> bool:
        """Whether ``value`` is open and was issued to ``principal``."""
        with self._lock:
            return self._live.get(value) == principal

    def close(self, value: bytes, principal: str) -> bool:
        """Close ``value`` if it is open and ``principal``'s; whether it was."""
        with self._lock:
            if self._live.get(value) != principal:
                return False
            self._drop(value)
            return True

    def restore(self, value: bytes, principal: str) -> None:
        """Open ``value`` for ``principal`` again (the undoing of a C_Finalize), newest,
        within the bounds as :meth:`open`; nothing if it is live already."""
        with self._lock:
            if value not in self._live:
                self._add(value, principal)

    def _add(self, value: bytes, principal: str) -> None:
        """``value`` live for ``principal``, newest, after making room (under the lock)."""
        if self._count.get(principal, 0) >= self.per_principal:
            self._drop(next(v for v, p in self._live.items() if p == principal))
        elif len(self._live) >= self.limit:
            self._drop(next(iter(self._live)))
        self._live[value] = principal
        self._count[principal] = self._count.get(principal, 0) + 1

    def _drop(self, value: bytes) -> None:
        principal = self._live.pop(value)
        left = self._count[principal] - 1
        if left:
            self._count[principal] = left
        else:
            del self._count[principal]
