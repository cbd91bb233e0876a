"""The own lifecycle state of a key pair's public key object (KMIP 2.1 §3.22).

A KMIP key pair is two managed objects with states of their own: activating the private
key leaves the public key Pre-Active, and a public key can be destroyed while its
private key lives on (the profiles' AKLC test cases do both). keykeeper keeps one key
(one version, one material) for the pair, so the public object's state, where it
differs from the key's, is kept as a stored ``State`` attribute of the ``/public``
object (kmip/attributes_store.py labels, written through service/kmip_attributes.py):
a stored instance replaces the computed one for Get Attributes as for the operations
(with its Activation Date: none while Pre-Active, its own once activated alone).
The public material is never erased by it (it is not secret, and the private key still
needs it); a destroyed public object only refuses to be served.
"""

from __future__ import annotations

from collections.abc import Mapping

from keykeeper.domain.keys import Key
from keykeeper.kmip.attributes_store import decode_object, encode_object, object_scope
from keykeeper.kmip.call import Call
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import State
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["public_state", "set_public_state"]

_STATE = "State"
_ACTIVATION = "Activation Date"


def public_state(key: Key, version: int) -> int | None:
    """The stored state of ``version``'s public object, or None (it follows the key)."""
    stored = decode_object(key.labels, object_scope(version, True)).get(_STATE, [])
    for index, value in stored:
        if index == 0 and value is not None and isinstance(value.value, int):
            return value.value
    return None


def set_public_state(call: Call, key: Key, version: int, state: int | None,
                     operation: str) -> Key:
    """Store (or, with None, clear) the state of ``version``'s public object, authorized
    as ``operation`` on the key. Returns the key as written."""
    service = call.services.kmip_attributes
    assert service is not None
    scope = object_scope(version, True)
    now = int(call.services.deps.clock().timestamp())

    def change(labels: Mapping[str, str]) -> dict[str, str]:
        stored = decode_object(labels, scope)
        if state is None:        # the key's state and dates again
            stored.pop(_STATE, None)
            stored.pop(_ACTIVATION, None)
        else:
            stored[_STATE] = [(0, Item(int(Tag.STATE), ItemType.ENUMERATION, int(state)))]
            if state == State.PRE_ACTIVE:      # no Activation Date yet (hides the key's)
                stored[_ACTIVATION] = [(0, None)]
            elif state == State.ACTIVE:
                stored[_ACTIVATION] = [(0, Item(int(Tag.ACTIVATION_DATE), ItemType.DATE_TIME,
                                                now))]
        return encode_object(labels, scope, stored)

    return service.change(call.ctx, key.id, change, operation)
