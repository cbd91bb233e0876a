"""Legacy algorithms, kept apart as pyca/cryptography keeps ``hazmat/decrepit/``.

Everything here is refused by default policy; see :mod:`keykeeper.crypto.legacy.specs`.
"""

from keykeeper.crypto.legacy.specs import LEGACY_SPECS

__all__ = ["LEGACY_SPECS"]
