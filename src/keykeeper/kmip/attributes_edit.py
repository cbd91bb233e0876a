"""Add, Modify, Delete and Set Attribute on one object (KMIP 1.4 §4.13-4.15, KMIP 2.1
§6.1.4, §6.1.32, §6.1.16, §6.1.47).

Rules:
- A client may change only the attributes the specification lets a client modify
  (attributes_catalogue.py) and custom ones; any other is refused with
  ``Permission_Denied`` (1.x) or ``Attribute_Read_Only`` (2.x).
- Activation Date and Deactivation Date are keykeeper lifecycle dates: they change through
  ``KeyAdmin.update`` (Activation Date only while the key is pre-active: else
  ``Wrong_Key_Lifecycle_State`` in 2.x, ``Permission_Denied`` in 1.x as the 1.4 test
  cases answer).
- Add: a single-instance attribute already present is refused (``Attribute_Single_Valued``
  / ``Illegal_Operation``); a new instance takes the next free Attribute Index.
- Modify/Delete find the instance by Attribute Index (1.x, default 0) or by its current
  value (2.x Current Attribute; else the first instance). Missing: ``Attribute_Not_Found``
  (2.x) / ``Item_Not_Found`` (1.x).
- Set (2.x): single-instance attributes only (``Multi_Valued_Attribute``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType

from keykeeper.crypto.registry import ALGORITHMS
from keykeeper.domain.keys import Key
from keykeeper.domain.states import KeyState
from keykeeper.kmip.attributes import NAMESPACE_ATTRIBUTE, merged_values, object_values
from keykeeper.kmip.attributes_catalogue import (
    by_name,
    date_time,
    from_v1,
    from_v2,
    is_custom,
    to_v1,
)
from keykeeper.kmip.attributes_computed import computed_attributes
from keykeeper.kmip.attributes_store import Stored, decode_object, encode_object, object_scope
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import ObjectId

__all__ = [
    "add_attribute",
    "delete_attribute",
    "modify_attribute",
    "requested_change",
    "response_attribute",
    "set_attribute",
]

_LIFECYCLE = {"Activation Date": "activation_date", "Deactivation Date": "deactivation_date"}


def _v2(call: Call) -> bool:
    return call.version >= (2, 0)


def _read_only(call: Call, name: str) -> KmipError:
    return KmipError("Attribute_Read_Only" if _v2(call) else "Permission_Denied",
                     f"attribute '{name[:64]}' is read-only")


def _not_found(call: Call, name: str) -> KmipError:
    return KmipError("Attribute_Not_Found" if _v2(call) else "Item_Not_Found",
                     f"the object has no such '{name[:64]}' attribute instance")


def _check_client(call: Call, name: str) -> None:
    # A Create's choice of namespace, never a stored claim (nor a look-alike of one, such
    # as vendor "x" with name "x-keykeeper-namespace").
    if name == NAMESPACE_ATTRIBUTE or name.endswith(NAMESPACE_ATTRIBUTE[1:]):
        raise _read_only(call, name)
    d = by_name(name)
    if d is None:
        if not is_custom(name):
            raise KmipError("Invalid_Field", f"unknown attribute '{name[:64]}'")
        return
    if not d.client and name not in _LIFECYCLE:
        raise _read_only(call, name)


def _check_quantum_safe(key: Key, name: str, value: Item) -> None:
    """Quantum Safe true on a key whose algorithm is not quantum safe: KmipError
    (General_Failure, "NOT_SAFE"), as Create refuses it (kmip/objects.py new_key)."""
    if name == "Quantum Safe" and value.value is True:
        spec = ALGORITHMS.get(key.algorithm)
        if spec is None or not spec.quantum_safe:
            raise KmipError("General_Failure", "NOT_SAFE")


def _lifecycle(call: Call, key: Key, name: str, value: Item) -> None:
    if name == "Activation Date" and key.state != KeyState.PRE_ACTIVE:
        raise KmipError("Wrong_Key_Lifecycle_State" if _v2(call) else "Permission_Denied",
                        "the Activation Date can change only while the object is pre-active")
    if not isinstance(value.value, int) or isinstance(value.value, bool):
        raise KmipError("Invalid_Field", f"{name} is a Date-Time")
    when = date_time(value, name)
    call.services.keys.update(call.ctx, key.id, lifecycle={_LIFECYCLE[name]: when})


def _edit(call: Call, key: Key, oid: ObjectId,
          step: Callable[[Stored, dict[int, Item]], None], name: str) -> None:
    """Run ``step(stored, current instances of name)`` on fresh labels in one transaction."""
    store = call.services.kmip_attributes
    assert store is not None
    scope = object_scope(oid.version, oid.public)

    def change(labels: Mapping[str, str]) -> Mapping[str, str]:
        fresh = _with_labels(key, labels)
        current = {i: v for n, i, v in merged_values(fresh, oid) if n == name}
        stored = decode_object(labels, scope)
        step(stored, current)
        return encode_object(labels, scope, stored)

    store.change(call.ctx, key.id, change)


def _with_labels(key: Key, kmip_labels: Mapping[str, str]) -> Key:
    labels = {k: v for k, v in key.labels.items() if not k.startswith("kmip.")}
    labels.update(kmip_labels)
    return replace(key, labels=MappingProxyType(labels))


def _put(stored: Stored, name: str, index: int, value: Item | None) -> None:
    rest = [(i, v) for i, v in stored.get(name, []) if i != index]
    stored[name] = sorted([*rest, (index, value)], key=lambda p: p[0])


def _pick(call: Call, name: str, current: dict[int, Item], index: int | None,
          value: Item | None) -> int:
    if index is not None:
        if index not in current:
            raise _not_found(call, name)
        return index
    if value is not None:
        for i, v in current.items():
            if v.type == value.type and v.value == value.value:
                return i
        raise _not_found(call, name)
    if not current:
        raise _not_found(call, name)
    return min(current)


def add_attribute(call: Call, key: Key, oid: ObjectId, name: str, value: Item) -> int:
    """Add an instance; returns its Attribute Index."""
    _check_client(call, name)
    _check_quantum_safe(key, name, value)
    if name in _LIFECYCLE:
        present = any(n == name for n, _, _ in object_values(call, key, oid))
        if present:
            raise KmipError("Attribute_Single_Valued" if _v2(call) else "Illegal_Operation",
                            f"the object already has a '{name}'")
        _lifecycle(call, key, name, value)
        return 0
    d = by_name(name)
    result = [0]

    def step(stored: Stored, current: dict[int, Item]) -> None:
        if current and d is not None and not d.multi:
            raise KmipError("Attribute_Single_Valued" if _v2(call) else "Illegal_Operation",
                            f"'{name}' has a single instance, and the object has it")
        if name == "Name" and _name_value(value) in {_name_value(v) for v in current.values()}:
            # A Name identifies one object: the object already carries this one.
            raise KmipError("Non_Unique_Name_Attribute" if _v2(call) else "Invalid_Field",
                            "the object already has this Name")
        used = set(current) | {i for i, _ in stored.get(name, [])}
        result[0] = max(used, default=-1) + 1
        _put(stored, name, result[0], value)

    _edit(call, key, oid, step, name)
    return result[0]


def modify_attribute(call: Call, key: Key, oid: ObjectId, name: str, index: int | None,
                     current_value: Item | None, value: Item) -> int:
    """Replace an instance; returns its Attribute Index."""
    _check_client(call, name)
    _check_quantum_safe(key, name, value)
    if name in _LIFECYCLE:
        if not any(n == name for n, _, _ in object_values(call, key, oid)):
            raise _not_found(call, name)
        _lifecycle(call, key, name, value)
        return 0
    result = [0]

    def step(stored: Stored, current: dict[int, Item]) -> None:
        result[0] = _pick(call, name, current, index, current_value)
        _put(stored, name, result[0], value)

    _edit(call, key, oid, step, name)
    return result[0]


def delete_attribute(call: Call, key: Key, oid: ObjectId, name: str, index: int | None,
                     current_value: Item | None) -> tuple[int, Item]:
    """Delete an instance; returns its Attribute Index and the value deleted."""
    _check_client(call, name)
    if name in _LIFECYCLE:
        raise _read_only(call, name)
    result: list[tuple[int, Item]] = []

    def step(stored: Stored, current: dict[int, Item]) -> None:
        i = _pick(call, name, current, index, current_value)
        result.append((i, current[i]))
        computed = {ix for n, ix, _ in computed_attributes(key, oid) if n == name}
        if i in computed:
            _put(stored, name, i, None)  # hide the computed instance
        else:
            stored[name] = [(ix, v) for ix, v in stored.get(name, []) if ix != i]
            if not stored[name]:
                del stored[name]

    _edit(call, key, oid, step, name)
    return result[0]


def set_attribute(call: Call, key: Key, oid: ObjectId, name: str, value: Item) -> None:
    """Set a single-instance attribute (create or replace; KMIP 2.1 §6.1.47)."""
    _check_client(call, name)
    _check_quantum_safe(key, name, value)
    d = by_name(name)
    if d is not None and d.multi:
        raise KmipError("Multi_Valued_Attribute",
                        f"'{name}' may have several instances: use Add or Modify Attribute")
    if name in _LIFECYCLE:
        _lifecycle(call, key, name, value)
        return

    def step(stored: Stored, current: dict[int, Item]) -> None:
        stored[name] = [(0, value)]

    _edit(call, key, oid, step, name)


def _single_child(item: Item, what: str) -> Item:
    children = item.children
    if len(children) != 1:
        raise KmipError("Invalid_Field", f"{what} holds exactly one attribute")
    return children[0]


def requested_change(payload: Item, tag_2x: int
                     ) -> tuple[str, int | None, Item | None] | None:
    """The attribute a request carries: a 1.x ``Attribute`` (name, index, value or None)
    or the 2.x container ``tag_2x`` (New Attribute / Current Attribute; index None).
    None when neither is there."""
    attribute = payload.find(Tag.ATTRIBUTE)
    if attribute is not None:
        return from_v1(attribute)
    container = payload.find(tag_2x)
    if container is not None:
        name, value = from_v2(_single_child(container, "the attribute container"))
        return name, None, value
    return None


def response_attribute(call: Call, name: str, index: int, value: Item) -> list[Item]:
    """The 1.x answer's ``Attribute`` (2.x answers the Unique Identifier alone)."""
    return [] if call.version >= (2, 0) else [to_v1(name, value, index)]


def _name_value(value: Item) -> str | None:
    """A Name structure's Name Value (None when it has none)."""
    found = value.find(int(Tag.NAME_VALUE)) if value.type is ItemType.STRUCTURE else None
    return found.value if found is not None and isinstance(found.value, str) else None
