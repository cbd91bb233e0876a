"""Grant conditions on the encryption context, as AWS KMS key policies allow
(``kms:EncryptionContext:`` condition keys), in a small language that is parsed, never
evaluated as code::

    condition := clause ("and" clause)*
    clause    := operand ("==" | "!=") operand
    operand   := context.NAME | principal.name | principal.metadata.NAME | "literal"

Example: ``context.tenant == principal.metadata.tenant``. A name that is absent (no
such context entry, no such metadata) never equals anything, so a condition on a context
the caller did not send denies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from keykeeper.errors import InvalidArgument

__all__ = ["Condition", "parse_condition"]

_TOKEN = re.compile(r'\s*(?:(==|!=)|(and)\b|"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_.-]*))')
_REF = re.compile(r"context\.[A-Za-z0-9_.-]{1,128}|principal\.name|"
                  r"principal\.metadata\.[A-Za-z0-9_.-]{1,128}")
MAX_LENGTH = 1024


class _Who(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class _Operand:
    ref: str | None        # "context.x" | "principal.name" | "principal.metadata.x"
    literal: str | None

    def value(self, context: Mapping[str, str], who: _Who) -> str | None:
        if self.ref is None:
            return self.literal
        if self.ref.startswith("context."):
            return context.get(self.ref[8:])
        if self.ref == "principal.name":
            return who.name
        return who.metadata.get(self.ref[19:])


@dataclass(frozen=True, slots=True)
class _Clause:
    left: _Operand
    equal: bool
    right: _Operand

    def holds(self, context: Mapping[str, str], who: _Who) -> bool:
        a, b = self.left.value(context, who), self.right.value(context, who)
        if a is None or b is None:
            return False
        return (a == b) is self.equal


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    clauses: tuple[_Clause, ...]

    def holds(self, context: Mapping[str, str] | None, who: _Who) -> bool:
        ctx = context or {}
        return all(c.holds(ctx, who) for c in self.clauses)

    def __str__(self) -> str:
        return self.text


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, value) pairs; kind is "op", "and", "lit" or "name"."""
    out: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InvalidArgument(f"condition {text!r}: cannot read {text[pos:pos + 20]!r}")
        if m.group(1):
            out.append(("op", m.group(1)))
        elif m.group(2):
            out.append(("and", "and"))
        elif m.group(3) is not None:
            out.append(("lit", re.sub(r"\\(.)", r"\1", m.group(3))))
        else:
            out.append(("name", m.group(4)))
        pos = m.end()
    return out


def _operand(token: tuple[str, str], text: str) -> _Operand:
    kind, value = token
    if kind == "name":
        if not _REF.fullmatch(value):
            raise InvalidArgument(f"condition {text!r}: unknown name {value!r}; use "
                                  "context.NAME, principal.name or principal.metadata.NAME")
        return _Operand(value, None)
    if kind == "lit":
        return _Operand(None, value)
    raise InvalidArgument(f"condition {text!r}: expected a name or a quoted string")


def parse_condition(text: str) -> Condition:
    """Parse a condition; raise :class:`InvalidArgument` naming what is wrong."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_LENGTH:
        raise InvalidArgument(f"condition must be 1..{MAX_LENGTH} characters")
    tokens = _tokens(text)
    clauses: list[_Clause] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise InvalidArgument(f"condition {text!r}: expected 'operand == operand'")
        left, op, right = tokens[i], tokens[i + 1], tokens[i + 2]
        if op[0] != "op":
            raise InvalidArgument(f"condition {text!r}: expected '==' or '!='")
        lo, ro = _operand(left, text), _operand(right, text)
        if lo.ref is None and ro.ref is None:
            raise InvalidArgument(f"condition {text!r}: a clause must name context or "
                                  "principal")
        clauses.append(_Clause(lo, op[1] == "==", ro))
        i += 3
        if i == len(tokens):
            break
        if tokens[i][0] != "and":
            raise InvalidArgument(f"condition {text!r}: clauses are joined with 'and'")
        i += 1
    if len(clauses) > 16:
        raise InvalidArgument("a condition may hold at most 16 clauses")
    return Condition(text=text.strip(), clauses=tuple(clauses))
