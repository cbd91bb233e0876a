"""What an approval request may hold: plain JSON, and nothing named like a secret.

An approval request is stored in clear and shown to every approver, so the gate refuses
an argument named like a secret, and a stored result has such fields replaced by
``[withheld]`` (the operation still ran; only its stored answer is redacted).

An executor whose answer *is* a secret meant for the requester (a token made for another
principal) marks it :class:`Claimable`: the approvals service stores it wrapped, never in
clear, and hands it to the requester alone, once (``POST /v1/approvals/{id}/claim``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keykeeper.errors import Internal, InvalidArgument

__all__ = ["MAX_ARGUMENTS", "WITHHELD", "Claimable", "check_arguments", "split_claimable",
           "withhold"]

MAX_ARGUMENTS = 64 * 1024  # bytes of JSON
WITHHELD = "[withheld]"
_SECRET_NAME = re.compile(r"secret|token|passphrase|password|plaintext|material|private|"
                          r"share|credential", re.IGNORECASE)


def check_arguments(arguments: Mapping[str, Any]) -> None:
    """Refuse an argument named like a secret (an approval request is stored in clear and
    shown to every approver), and anything that is not plain JSON. Only the operation's own
    argument names are checked: nested objects are caller data (labels, metadata)."""
    for k in arguments:
        if not isinstance(k, str):
            raise Internal("approval arguments have a non-string name")
        if _SECRET_NAME.search(k):
            raise InvalidArgument(f"'{k}' looks like a secret and cannot be held in an "
                                  "approval request; this operation cannot wait for approval "
                                  "with it")
    _check_json(arguments)


def _check_json(value: Any, path: str = "arguments") -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise Internal(f"{path} has a non-string field name")
            _check_json(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for n, v in enumerate(value):
            _check_json(v, f"{path}[{n}]")
    elif not (value is None or isinstance(value, str | int | float | bool)):
        raise Internal(f"{path} holds a {type(value).__name__}, which is not JSON")


def withhold(value: Any) -> Any:
    """The result to store: fields named like secrets replaced by ``[withheld]``."""
    if isinstance(value, Mapping):
        return {str(k): WITHHELD if _SECRET_NAME.search(str(k)) else withhold(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [withhold(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Claimable:
    """A secret in an executor's answer that only the requester may receive (claim)."""

    value: str

    def __repr__(self) -> str:
        return "Claimable(<hidden>)"


def split_claimable(answer: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The answer with its top-level :class:`Claimable` fields replaced by
    ``[withheld]``, and those fields' secrets."""
    public: dict[str, Any] = {}
    claimable: dict[str, str] = {}
    for k, v in answer.items():
        if isinstance(v, Claimable):
            claimable[str(k)] = v.value
            public[str(k)] = WITHHELD
        else:
            public[str(k)] = v
    return public, claimable
