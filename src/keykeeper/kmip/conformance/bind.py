"""Placeholders of the OASIS KMIP Profiles test cases, and binding them during a replay.

A test-case file (KMIP Profiles 2.1 §5, its XML encoding §5.4) writes values that only the
server under test can know as placeholders: ``$UNIQUE_IDENTIFIER_0``, ``$NOW``,
``$NOW-3600``, ``$IV_COUNTER_NONCE``, ``$SIGNATURE_DATA``, ``$DATA_0`` and so on.
kmip/ttlv/xml.py parses them (``parse_placeholders=True``) into an :class:`Item` of the
declared type whose ``value`` is the placeholder text itself (a ``str`` starting with
``$``): ``Item(TIME_STAMP, DATE_TIME, "$NOW")``.

Rules (docs/kmip-conformance.md, "Placeholders"):

* ``$NOW``, ``$NOW+n``, ``$NOW-n``: in a request, the send time in whole seconds plus
  ``n``; in a response, any Date-Time within :data:`NOW_WINDOW` seconds of it.
* A numbered name (``$UNIQUE_IDENTIFIER_3``, ``$DATA_0``, ``$KEY_MATERIAL_1``) binds once,
  at its first appearance in a response, to the value the server answered there; every
  later appearance, in a request or a response, is that value.
* An unnumbered name (``$IV_COUNTER_NONCE``, ``$AUTHENTICATED_ENCRYPTION_TAG``,
  ``$SIGNATURE_DATA``, ``$MAC_DATA``, ``$CORRELATION_VALUE``) rebinds at each appearance in
  a response (the latest Encrypt, Sign, MAC or multi-part step), and a request uses the
  latest value.
* Outputs are bound even where the expected response writes a literal (some files do,
  then name the output in the next request): after an Encrypt, ``$DATA_n`` (n counts the
  file's Encrypt answers from 0), ``$IV_COUNTER_NONCE`` and
  ``$AUTHENTICATED_ENCRYPTION_TAG``; after a Sign ``$SIGNATURE_DATA``; after a MAC
  ``$MAC_DATA``; after any answer with one, ``$CORRELATION_VALUE``.
* A literal Byte String in an expected response that the comparison tolerates as
  server-chosen (compare.py) is remembered: a later request that sends the same literal
  (a Decrypt of the test case's ciphertext) sends the server's value instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.textual import placeholder

__all__ = ["NOW_WINDOW", "Bindings", "UnboundPlaceholder", "now_offset", "placeholder"]

NOW_WINDOW = 900
"""Seconds a response's ``$NOW`` Date-Time may differ from the comparison time."""

_NOW = re.compile(r"^\$NOW(?:([+-])([0-9]+))?$")
_NUMBERED = re.compile(r"_[0-9]+$")

BoundValue = int | bool | str | bytes


class UnboundPlaceholder(LookupError):
    """A request uses a placeholder that no earlier response bound."""

    def __init__(self, name: str) -> None:
        super().__init__(f"placeholder {name} used before any response bound it")
        self.name = name


def now_offset(name: str) -> int | None:
    """Seconds from now that a ``$NOW`` placeholder means (``$NOW-3600`` -> -3600), or None
    for any other placeholder."""
    m = _NOW.match(name)
    if m is None:
        return None
    if m.group(1) is None:
        return 0
    n = int(m.group(2))
    return -n if m.group(1) == "-" else n


@dataclass(slots=True)
class Bindings:
    """What one test-case file has bound so far.

    values: placeholder name -> the server's value. literals: expected literal Byte String
    -> the server's value (see the module docstring). generated: Unique Identifiers of the
    objects the server generated (Create, Create Key Pair, Re-Key, Re-Key Key Pair): their
    key material and anything computed from it cannot equal the test case's values.
    uids: the Unique Identifiers bound, in binding order (for clean-up)."""

    values: dict[str, BoundValue] = field(default_factory=dict)
    literals: dict[bytes, bytes] = field(default_factory=dict)
    generated: set[str] = field(default_factory=set)
    uids: list[str] = field(default_factory=list)
    encrypts: int = 0

    def copy(self) -> Bindings:
        return Bindings(dict(self.values), dict(self.literals), set(self.generated),
                        list(self.uids), self.encrypts)

    def adopt(self, other: Bindings) -> None:
        """Take over ``other``'s state (a trial match that succeeded)."""
        self.values, self.literals = other.values, other.literals
        self.generated, self.uids = other.generated, other.uids
        self.encrypts = other.encrypts

    def learn_output(self, name: str, value: BoundValue) -> None:
        """Bind an operation's output that a later request may name although the expected
        response wrote it as a literal (see the module docstring): an unnumbered name
        takes the latest value, a numbered one keeps its first."""
        if _NUMBERED.search(name):
            self.values.setdefault(name, value)
        else:
            self.values[name] = value

    def learn(self, name: str, value: BoundValue) -> bool:
        """Bind ``name`` from a response. Returns False when a numbered name is already
        bound to a different value (the response contradicts an earlier one)."""
        if _NUMBERED.search(name) and name in self.values:
            return self.values[name] == value
        self.values[name] = value
        if isinstance(value, str) and "UNIQUE_IDENTIFIER" in name and value not in self.uids:
            self.uids.append(value)
        return True

    def bind_request(self, item: Item, now: int) -> Item:
        """A copy of request ``item`` with every placeholder replaced (``now``: Unix
        seconds). Raises UnboundPlaceholder for a name no response has bound yet."""
        name = placeholder(item)
        if name is not None:
            offset = now_offset(name)
            if offset is not None:
                return Item(item.tag, item.type, now + offset)
            if name not in self.values:
                raise UnboundPlaceholder(name)
            return Item(item.tag, item.type, self.values[name])
        if item.type is ItemType.STRUCTURE and isinstance(item.value, list):
            return Item(item.tag, item.type, [self.bind_request(c, now) for c in item.value])
        if isinstance(item.value, bytes) and item.value in self.literals:
            return Item(item.tag, item.type, self.literals[item.value], item.width)
        return Item(item.tag, item.type, item.value, item.width)
