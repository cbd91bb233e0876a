"""Names of keys and namespaces, and references to keys.

A key reference (``{key}`` in the REST contract) is the key's id, or
``namespace:name``, or a bare ``name`` in namespace ``default``. Names match
``[A-Za-z0-9._-]{1,128}`` (DESIGN.md, REST API).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keykeeper.errors import InvalidArgument

__all__ = ["DEFAULT_NAMESPACE", "KeyRef", "parse_key_ref", "validate_name"]

DEFAULT_NAMESPACE = "default"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_KEY_ID = re.compile(r"k-[0-9a-f]{32}")


def validate_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid name; else raise :class:`InvalidArgument`.

    A name shaped like a key id (``k-`` and 32 hex digits) is refused too, so that a bare
    reference can never mean two keys.
    """
    if not _NAME.fullmatch(value):
        raise InvalidArgument(f"{what} must match [A-Za-z0-9._-]{{1,128}}")
    if _KEY_ID.fullmatch(value):
        raise InvalidArgument(f"{what} must not have the form of a key id (k- and 32 hex "
                              "digits)")
    return value


def is_key_id(value: str) -> bool:
    return _KEY_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class KeyRef:
    """Either ``key_id`` or (``namespace``, ``name``) is set."""

    key_id: str | None = None
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        return self.key_id or f"{self.namespace}:{self.name}"


def parse_key_ref(ref: str) -> KeyRef:
    """Parse a key reference; raise :class:`InvalidArgument` if it is malformed."""
    if is_key_id(ref):
        return KeyRef(key_id=ref)
    if ":" in ref:
        namespace, _, name = ref.partition(":")
        return KeyRef(namespace=validate_name(namespace, "namespace"),
                      name=validate_name(name, "key name"))
    return KeyRef(namespace=DEFAULT_NAMESPACE, name=validate_name(ref, "key name"))
