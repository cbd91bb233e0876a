"""The dispatch table: Operation enumeration value -> handler (one module per operation,
each exposing ``OPERATION`` and ``handle``; kmip/call.py gives the contract)."""

from __future__ import annotations

from types import ModuleType

from keykeeper.kmip.call import Handler
from keykeeper.kmip.ops import (
    activate,
    add_attribute,
    check,
    create,
    create_key_pair,
    decrypt,
    delete_attribute,
    destroy,
    discover_versions,
    encrypt,
    get,
    get_attribute_list,
    get_attributes,
    get_usage_allocation,
    hash,
    interop,
    locate,
    log,
    mac,
    mac_verify,
    modify_attribute,
    pkcs11,
    query,
    register,
    rekey,
    rekey_key_pair,
    revoke,
    rng_retrieve,
    set_attribute,
    sign,
    signature_verify,
)

__all__ = ["OPERATIONS"]

# Each operation module is listed here, one line each.
_MODULES: list[ModuleType] = [
    discover_versions,
    query,
    rng_retrieve,
    hash,
    get_attributes,
    get_attribute_list,
    add_attribute,
    modify_attribute,
    delete_attribute,
    set_attribute,
    locate,
    encrypt,
    decrypt,
    sign,
    signature_verify,
    mac,
    mac_verify,
    activate,
    check,
    create,
    create_key_pair,
    destroy,
    get,
    get_usage_allocation,
    register,
    rekey,
    rekey_key_pair,
    revoke,
    interop,
    log,
    pkcs11,
]

OPERATIONS: dict[int, Handler] = {int(m.OPERATION): m.handle for m in _MODULES}
