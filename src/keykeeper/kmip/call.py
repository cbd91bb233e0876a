"""What every operation module gets and returns (the contract of the dispatch table).

An operation module in ``kmip/ops/`` exposes ``OPERATION`` (an ``Operation`` enumeration
value) and ``handle(call, payload) -> list[Item]``: it reads the Request Payload's
children and returns the Response Payload's children. It raises KeykeeperError subclasses
(mapped once to a Result Reason in kmip/errors.py) or :class:`KmipError` for a reason that
has no keykeeper error (``Invalid_Field``, ``Operation_Not_Supported``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keykeeper.errors import KeykeeperError
from keykeeper.kmip.pkcs11_sessions import Pkcs11Sessions
from keykeeper.kmip.ttlv import Item, ItemType

if TYPE_CHECKING:
    from keykeeper.service.context import RequestContext
    from keykeeper.service.facade import Services

__all__ = ["Call", "Handler", "KmipError", "KmipSettings", "object_not_found"]

_ID_PLACEHOLDER = 1  # Unique Identifier Enumeration ID Placeholder (KMIP 2.x)


@dataclass(frozen=True, slots=True)
class KmipSettings:
    """Server settings the operations read.

    namespace: where objects created or registered over KMIP go when the request does not
    name one (attribute ``x-keykeeper-namespace``).
    extractable_default: the KMIP Extractable attribute when a Create or Register does not
    give it (KMIP's own default is True; keykeeper's is False: Get answers key material of
    an extractable object only).
    lease_time: the Lease Time attribute of every object, seconds (the KMIP attribute
    "Lease Time", 1.0 and later: how long a client may use an object before it asks the
    server again); 0: objects have no Lease Time.
    """

    namespace: str = "default"
    extractable_default: bool = False
    lease_time: int = 3600


class KmipError(KeykeeperError):
    """A KMIP-only failure: ``kmip_reason`` is a Result Reason name as in errors.py
    (``Invalid_Field``, ``Operation_Not_Supported``, ``Key_Format_Type_Not_Supported``,
    ``Cryptographic_Failure``, ...)."""

    code = "invalid_argument"
    http_status = 400

    # The stable code (audit records, metrics) of the reasons that are not bad input.
    _CODES = {"Permission_Denied": ("permission_denied", 403),
              "Not_Extractable": ("permission_denied", 403),
              "Item_Not_Found": ("not_found", 404),
              "Object_Not_Found": ("not_found", 404),
              "Wrong_Key_Lifecycle_State": ("failed_precondition", 409)}

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.kmip_reason = reason
        if reason in self._CODES:
            self.code, self.http_status = self._CODES[reason]


def object_not_found() -> KmipError:
    """No object has the Unique Identifier, or the caller may not see it: Result Reason
    Object_Not_Found (KMIP 2.x, as the KMIP 2.1 test case BL-M-4-21 answers); a 1.x client
    gets Item_Not_Found (kmip/versions.py ``older_reason``)."""
    return KmipError("Object_Not_Found", "no object has this Unique Identifier")


@dataclass(slots=True)
class Call:
    """One batch item being served: the services, the caller's context (principal set),
    the message's protocol version (major, minor), the server's KMIP settings, and the
    batch's ID Placeholder (KMIP 2.1 §2.1.7: the Unique Identifier the previous operation
    of the same batch returned; an operation that returns one sets it), and the
    processor's live PKCS#11 Correlation Values (kmip/ops/pkcs11.py; None: not served)."""

    services: Services
    ctx: RequestContext
    version: tuple[int, int]
    settings: KmipSettings = field(default_factory=KmipSettings)
    placeholder: str | None = None
    pkcs11: Pkcs11Sessions | None = None

    def uid(self, payload: Item, tag: int) -> str:
        """The request's Unique Identifier (child ``tag``, a Text String), else -- when the
        child is absent, or is the 2.x Enumeration ID Placeholder -- the ID Placeholder.
        Raises KmipError(Invalid_Field) when there is neither, or when the child is of
        another type or another Unique Identifier Enumeration (KMIP 2.1 §2.1.7, §7.1): a
        wrongly typed identifier never falls back to the placeholder."""
        item = payload.find(tag)
        if item is not None:
            if item.type is ItemType.TEXT_STRING and isinstance(item.value, str):
                return item.value
            if item.type is not ItemType.ENUMERATION or item.value != _ID_PLACEHOLDER:
                raise KmipError("Invalid_Field", "the Unique Identifier must be a Text "
                                "String (or the Enumeration ID Placeholder)")
        if self.placeholder is not None:
            return self.placeholder
        raise KmipError("Invalid_Field", "the request names no Unique Identifier and the "
                        "batch has no ID Placeholder")


Handler = Callable[[Call, Item], list[Item]]
