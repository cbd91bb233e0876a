"""Activate (KMIP 1.4 §4.19, KMIP 2.1 §6.1.1): a pre-active object becomes active (the
whole key: keykeeper's ``key.activate``, as ``POST /v1/keys/{key}/activate``).
Wrong_Key_Lifecycle_State for an object in any other state. A key pair's two objects
are activated one by one (kmip/public_state.py): activating the private key leaves the
public key Pre-Active until it is activated too.
Request: Unique Identifier (or the ID Placeholder). Response: Unique Identifier."""

from __future__ import annotations

from keykeeper.crypto.registry import get_spec
from keykeeper.domain.states import KeyState
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.objects import resolve, text_item
from keykeeper.kmip.public_state import public_state, set_public_state
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import Operation, State
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.ACTIVATE


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.UNIQUE_IDENTIFIER))
    obj = resolve(call, uid, "key.activate")
    call.placeholder = obj.uid
    if obj.state != State.PRE_ACTIVE:
        raise KmipError("Wrong_Key_Lifecycle_State",
                        "only a pre-active object can be activated")
    key, number = obj.key, obj.version.version
    own = public_state(key, number) if get_spec(key.algorithm).asymmetric else None
    if obj.pair_public:
        # Its own state: Active now if the key is, else until the key is activated.
        wanted = None if key.state != KeyState.PRE_ACTIVE else int(State.ACTIVE)
        set_public_state(call, key, number, wanted, "key.activate")
    else:
        if get_spec(key.algorithm).asymmetric and not obj.version.public_only:
            if own is None:
                key = set_public_state(call, key, number, int(State.PRE_ACTIVE),
                                       "key.activate")
            elif own == State.ACTIVE:
                key = set_public_state(call, key, number, None, "key.activate")
        call.services.keys.activate(call.ctx, key.id)
    call.ctx.key_version = obj.version.version
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid)]
