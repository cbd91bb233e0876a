"""Destroy (KMIP 1.4 §4.21, KMIP 2.1 §6.1.16): crypto-erasure of the object's key version
(service/kmip_keys.py ``destroy``: the one erasure path, with its signed receipt; dual
control as ``key.destroy_version`` over REST). An active object is refused with
Wrong_Key_Lifecycle_State (revoke it first); an object already destroyed too.
The two objects of a key pair are destroyed one by one (kmip/public_state.py): the
public key alone is no longer served (its material stays: the private key needs it); the
private key's Destroy erases the version's material, the public key staying served (from
its stored public key) until it is destroyed too, which ends the key.
Request: Unique Identifier. Response: Unique Identifier."""

from __future__ import annotations

from keykeeper.crypto.registry import get_spec
from keykeeper.domain.states import ERASED
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.objects import KmipObject, kmip_keys, resolve, text_item
from keykeeper.kmip.public_state import set_public_state
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import Operation, State
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import ObjectId

OPERATION = Operation.DESTROY

_GONE = (int(State.DESTROYED), int(State.DESTROYED_COMPROMISED))


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.UNIQUE_IDENTIFIER))
    obj = resolve(call, uid, "key.destroy_version")
    call.placeholder = obj.uid
    if obj.state == State.ACTIVE:
        raise KmipError("Wrong_Key_Lifecycle_State",
                        "an active object cannot be destroyed: revoke it first")
    if obj.state in _GONE:
        raise KmipError("Wrong_Key_Lifecycle_State", "the object is already destroyed")
    service, number = kmip_keys(call), obj.version.version
    if obj.pair_public:
        to = State.DESTROYED_COMPROMISED if obj.state == State.COMPROMISED else State.DESTROYED
        set_public_state(call, obj.key, number, int(to), "key.destroy_version")
        if obj.version.state in ERASED:     # the private key went first: end the key now
            service.close(call.ctx, obj.key.id)
    elif get_spec(obj.key.algorithm).asymmetric and not obj.version.public_only:
        public = KmipObject(ObjectId(obj.key.id, number, True), obj.key, obj.version)
        alive = public.state not in _GONE
        if alive:   # the public object keeps its state: its material is not erased
            set_public_state(call, obj.key, number, public.state, "key.destroy_version")
        service.destroy(call.ctx, obj.key.id, number, keep_key=alive)
    else:
        service.destroy(call.ctx, obj.key.id, number)
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid)]
