"""Revoke (KMIP 1.4 §4.20, KMIP 2.1 §6.1.45). Revocation Reason Key Compromise or CA
Compromise: the object is compromised (keykeeper's ``key.compromise`` for a key's primary
version, ``key.compromise_version`` for an older one; dual control as over REST), at the
Compromise Occurrence Date (a date before the key existed counts from its creation:
keykeeper records when the key became suspect, and all of its use is). Any other reason:
the object is deactivated (service/kmip_keys.py ``deactivate``). The Revocation Message
is the recorded reason. The public key of a key pair is revoked alone (its own state,
kmip/public_state.py).
Request: Unique Identifier, Revocation Reason {code, message?}, Compromise Occurrence
Date. Response: Unique Identifier."""

from __future__ import annotations

from keykeeper.kmip.attributes_catalogue import date_time
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.objects import kmip_keys, resolve, text_item
from keykeeper.kmip.public_state import set_public_state
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, RevocationReasonCode, State
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.REVOKE

_COMPROMISE = (int(RevocationReasonCode.KEY_COMPROMISE), int(RevocationReasonCode.CA_COMPROMISE))
_GONE = (State.DESTROYED, State.DESTROYED_COMPROMISED)


def _reason(payload: Item) -> tuple[int, str]:
    reason = payload.find(int(Tag.REVOCATION_REASON))
    if reason is None or reason.type is not ItemType.STRUCTURE:
        raise KmipError("Invalid_Field", "Revocation Reason is required")
    code = reason.find(int(Tag.REVOCATION_REASON_CODE))
    if code is None or not isinstance(code.value, int) or isinstance(code.value, bool):
        raise KmipError("Invalid_Field", "Revocation Reason Code is required")
    message = reason.find(int(Tag.REVOCATION_MESSAGE))
    text = message.value if message is not None and isinstance(message.value, str) else ""
    try:
        name = RevocationReasonCode(code.value).name.replace("_", " ").lower()
    except ValueError:
        name = f"reason {code.value:#x}"
    return code.value, (f"KMIP revoke: {name}" + (f": {text}" if text else ""))[:1024]


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.UNIQUE_IDENTIFIER))
    obj = resolve(call, uid, "key.get")
    call.placeholder = obj.uid
    code, reason = _reason(payload)
    if obj.state in _GONE:
        raise KmipError("Wrong_Key_Lifecycle_State", "the object is destroyed")
    service = kmip_keys(call)
    if obj.pair_public:
        if obj.state == State.COMPROMISED or (
                code not in _COMPROMISE and obj.state not in (State.ACTIVE, State.PRE_ACTIVE)):
            raise KmipError("Wrong_Key_Lifecycle_State", "the object cannot be revoked now")
        to = State.COMPROMISED if code in _COMPROMISE else State.DEACTIVATED
        set_public_state(call, obj.key, obj.version.version, int(to),
                         "key.compromise" if code in _COMPROMISE else "key.update")
    elif code in _COMPROMISE:
        if obj.state == State.COMPROMISED:
            raise KmipError("Wrong_Key_Lifecycle_State", "the object is already compromised")
        when_item = payload.find(int(Tag.COMPROMISE_OCCURRENCE_DATE))
        when = None
        if when_item is not None:
            when = date_time(when_item, "Compromise Occurrence Date")
            when = min(max(when, obj.version.created_at, obj.key.created_at),
                       call.services.deps.clock())
        service.compromise(call.ctx, obj.key.id, obj.version.version, reason, when)
    else:
        if obj.state not in (State.ACTIVE, State.PRE_ACTIVE):
            raise KmipError("Wrong_Key_Lifecycle_State",
                            "only an active or pre-active object can be deactivated")
        service.deactivate(call.ctx, obj.key.id, obj.version.version, reason)
    call.ctx.key_version = obj.version.version
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid)]
