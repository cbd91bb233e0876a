"""The attributes a Create, Create Key Pair, Register or Re-Key request gives for the new
object (KMIP 1.4 Template-Attribute §2.1.8, KMIP 2.1 Attributes §2.1.2), read into one
normal form (kmip/attributes_catalogue.py: spec name -> value items under their own tag),
and the few keykeeper decides from: algorithm, length, usage mask, Name, Activation Date,
Extractable, ``x-keykeeper-namespace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keykeeper.domain.keys import Key
from keykeeper.kmip.attributes import NAMESPACE_ATTRIBUTE, read_attributes, store_attributes
from keykeeper.kmip.attributes_catalogue import date_time
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import RecommendedCurve
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["Template", "read_template", "store_template"]



@dataclass(slots=True)
class Template:
    """Attribute values by spec name (normal form)."""

    values: dict[str, list[Item]] = field(default_factory=dict)

    def one(self, name: str) -> Item | None:
        found = self.values.get(name)
        return found[0] if found else None

    def merged(self, specific: Template) -> Template:
        """This (common) template with ``specific``'s values taking precedence."""
        out = dict(self.values)
        out.update(specific.values)
        return Template(out)

    def _int(self, name: str) -> int | None:
        item = self.one(name)
        if item is None:
            return None
        if isinstance(item.value, bool) or not isinstance(item.value, int):
            raise KmipError("Invalid_Field", f"{name} has the wrong type")
        return item.value

    @property
    def algorithm(self) -> int | None:
        return self._int("Cryptographic Algorithm")

    @property
    def length(self) -> int | None:
        length = self._int("Cryptographic Length")
        if length is None:
            params = self.one("Cryptographic Domain Parameters")
            if params is not None and params.type is ItemType.STRUCTURE:
                curve = params.find(int(Tag.RECOMMENDED_CURVE))
                if curve is not None and isinstance(curve.value, int):
                    return _CURVE_BITS.get(curve.value)
        return length

    @property
    def mask(self) -> int | None:
        return self._int("Cryptographic Usage Mask")

    @property
    def name(self) -> str | None:
        item = self.one("Name")
        if item is None or item.type is not ItemType.STRUCTURE:
            return None
        value = item.find(int(Tag.NAME_VALUE))
        return value.value if value is not None and isinstance(value.value, str) else None

    @property
    def activation_date(self) -> datetime | None:
        item = self.one("Activation Date")
        if item is None:
            return None
        if not isinstance(item.value, int) or isinstance(item.value, bool):
            raise KmipError("Invalid_Field", "Activation Date has the wrong type")
        return date_time(item, "Activation Date")

    @property
    def extractable(self) -> bool | None:
        item = self.one("Extractable")
        if item is None:
            return None
        if not isinstance(item.value, bool):
            raise KmipError("Invalid_Field", "Extractable is a Boolean")
        return item.value

    @property
    def namespace(self) -> str | None:
        item = self.one(NAMESPACE_ATTRIBUTE)
        if item is None:
            return None
        if not isinstance(item.value, str):
            raise KmipError("Invalid_Field", f"{NAMESPACE_ATTRIBUTE} is a Text String")
        return item.value


def _curve_bits() -> dict[int, int]:
    out: dict[int, int] = {}
    for name, bits in (("P_256", 256), ("P_384", 384), ("P_521", 521)):
        member = getattr(RecommendedCurve, name, None)
        if member is not None:
            out[int(member)] = bits
    return out


_CURVE_BITS = _curve_bits()


def read_template(call: Call, payload: Item, *names: str) -> Template:
    """The attributes in the payload's containers called ``names`` (upper-snake tag
    names; 1.x and 2.x spellings both looked for), merged in order (later wins); with no
    ``names``, every container of the payload (kmip/attributes.py read_attributes).
    KmipError(Invalid_Field) for a malformed or unknown attribute."""
    if not names:
        return Template(read_attributes(payload, call.version))
    out = Template()
    for name in names:
        tag = getattr(Tag, name, None)
        if tag is None:
            continue
        for container in payload.find_all(int(tag)):
            if container.type is not ItemType.STRUCTURE:
                raise KmipError("Invalid_Field", f"{name} is not a Structure")
            out = out.merged(Template(read_attributes(container, call.version)))
    return out


def store_template(call: Call, key: Key, template: Template, *, version: int = 1,
                   public: bool = False) -> Key:
    """Persist the attributes keykeeper does not model itself on object
    ``key/version[/public]`` (kmip/attributes.py store_attributes: labels ``kmip.*``)."""
    if not template.values:
        return key
    return store_attributes(call, key, template.values, version=version, public=public)
