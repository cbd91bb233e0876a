"""Exceptions to KMIP results: Result Status ``Operation Failed`` with a Result Reason and
a Result Message (KMIP 2.1 §11, Table "Result Reason").

Every :class:`~keykeeper.errors.KeykeeperError` names its reason (``kmip_reason``, e.g.
``Item_Not_Found``; a key of the wrong purpose, :class:`~keykeeper.errors.WrongPurpose`,
``Incompatible_Cryptographic_Usage_Mask``); :class:`~keykeeper.kmip.call.KmipError`
carries one of its own; a malformed item (:class:`~keykeeper.kmip.ttlv.TtlvError`) is
``Invalid_Message``; a sealed server answers ``General_Failure`` with the message
``sealed``. Anything else is a bug: logged with its traceback and answered
``General_Failure`` with no detail.
"""

from __future__ import annotations

import logging

from keykeeper.errors import KeykeeperError, Sealed
from keykeeper.kmip.ttlv import TtlvError
from keykeeper.kmip.ttlv.enums import ResultReason

__all__ = ["ascii_text", "failure", "reason_value"]

log = logging.getLogger("keykeeper.kmip")


def reason_value(name: str) -> int:
    """The Result Reason enumeration value of a reason name (``Invalid_Field`` or
    ``INVALID_FIELD``); General_Failure for a name the tables do not know."""
    member = getattr(ResultReason, name.upper(), None)
    return int(member) if member is not None else int(ResultReason.GENERAL_FAILURE)


def ascii_text(text: str) -> str:
    """``text`` in ASCII: some KMIP clients (PyKMIP 0.11) fail on a Result Message that is
    not, and then show nothing of the error. "§" becomes "s.", anything else "?"."""
    if text.isascii():
        return text
    return text.replace("\u00a7", "s.").replace("\u2014", "-").encode(
        "ascii", "replace").decode("ascii")


def failure(exc: BaseException, operation: str = "kmip") -> tuple[int, str | None]:
    """(Result Reason value, Result Message) for ``exc``. The message never holds more
    than the error's public detail."""
    if isinstance(exc, Sealed):
        return reason_value("General_Failure"), "sealed"
    reason = getattr(exc, "kmip_reason", None)
    if isinstance(exc, KeykeeperError):
        return reason_value(str(reason or "General_Failure")), ascii_text(exc.detail)
    if isinstance(exc, TtlvError):
        return reason_value("Invalid_Message"), ascii_text(str(exc))
    log.error("internal error in %s", operation, exc_info=exc)
    return reason_value("General_Failure"), None
