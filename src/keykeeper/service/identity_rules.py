"""Validation of the access-control administration inputs (principals, roles, grants,
tokens). Pure functions: each returns the value in canonical form or raises
:class:`~keykeeper.errors.InvalidArgument` naming the field and the rule.

Certificate subjects are stored canonically so that matching a presented certificate is
an exact comparison (service/cert_auth.py):

* a distinguished name in RFC 4514 form, most specific RDN first, as
  ``openssl x509 -noout -subject -nameopt RFC2253`` prints it (``CN=app,O=Example,C=DE``);
  spaces after separators and lower-case attribute names are accepted and normalized;
  a DN is kept in the order given, so one written least specific RDN first
  (``O=Example,CN=app``) matches only a certificate whose subject is encoded in that
  order (``openssl req -subj "/CN=app/O=Example"`` makes one); the CLI warns when it
  sees that order (client/subjects.py);
* or a subjectAltName entry: ``DNS:app.example`` (lower-cased), ``URI:spiffe://corp/app``,
  ``email:ops@example.com``, ``IP:10.0.0.7`` (normalized by :mod:`ipaddress`).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping

from cryptography import x509
from cryptography.x509.oid import NameOID

from keykeeper.authz.model import ROOT, check_principal_name
from keykeeper.domain.durations import parse_duration
from keykeeper.errors import InvalidArgument

__all__ = [
    "KINDS",
    "MAX_METADATA",
    "canonical_subject",
    "check_description",
    "check_display_name",
    "check_kind",
    "check_metadata",
    "check_new_principal_name",
    "check_rate_limit",
    "check_role_name",
    "check_role_names",
    "check_subjects",
    "check_ttl",
    "parse_grantee",
]

KINDS = ("person", "service")
MAX_METADATA = 64
MAX_METADATA_VALUE = 256
MAX_ROLES = 32
MAX_SUBJECTS = 16
MAX_SUBJECT_LENGTH = 1024
MAX_DESCRIPTION = 1024
MAX_DISPLAY_NAME = 128
MAX_RATE_LIMIT = 1_000_000.0
MIN_TOKEN_TTL = 60
_KEY = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ROLE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_NOT_POSITIVE = re.compile(r"\s*(-[0-9]+|0+)[smhdw]?\s*")
_SAN = re.compile(r"(DNS|URI|email|IP):(.+)", re.IGNORECASE)
_DN_SEPARATOR_SPACE = re.compile(r"(?<!\\)([,+])\s+")
# Attribute names accepted in a DN besides cryptography's own upper-case ones.
_DN_NAMES = {
    "cn": NameOID.COMMON_NAME, "c": NameOID.COUNTRY_NAME, "l": NameOID.LOCALITY_NAME,
    "st": NameOID.STATE_OR_PROVINCE_NAME, "o": NameOID.ORGANIZATION_NAME,
    "ou": NameOID.ORGANIZATIONAL_UNIT_NAME, "street": NameOID.STREET_ADDRESS,
    "dc": NameOID.DOMAIN_COMPONENT, "uid": NameOID.USER_ID,
    "emailAddress": NameOID.EMAIL_ADDRESS, "E": NameOID.EMAIL_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
}


def check_text(value: object, what: str, limit: int, *, empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit or (not empty and not value.strip()):
        least = "at most" if empty else "1 to"
        raise InvalidArgument(f"{what} must be {least} {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidArgument(f"{what} must not contain control characters")
    return value


def check_new_principal_name(name: str) -> str:
    """A valid name that is not ``root`` (reserved for the break-glass init token, in any
    letter case so that no principal can pass for it)."""
    check_principal_name(name)
    if name.lower() == ROOT:
        raise InvalidArgument("principal name 'root' is reserved for the init token")
    if name.lower().rstrip(".") in _RESERVED:
        raise InvalidArgument(f"principal name '{name}' is reserved: the server records "
                              "its own actions under it")
    return name


# Names lifecycle events and audit records use for the server's own actions.
_RESERVED = frozenset({"root", "system", "scheduler", "init", "generate-root"})


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidArgument("kind must be 'person' or 'service'")
    return kind


def check_role_name(name: str) -> str:
    if not isinstance(name, str) or not _ROLE.fullmatch(name):
        raise InvalidArgument("role name must match [A-Za-z0-9._-]{1,128}")
    return name


def check_role_names(names: Iterable[str]) -> tuple[str, ...]:
    """Role names, de-duplicated in order; at most 32."""
    out = tuple(dict.fromkeys(check_role_name(n) for n in names))
    if len(out) > MAX_ROLES:
        raise InvalidArgument(f"a principal holds at most {MAX_ROLES} roles")
    return out


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """At most 64 entries; names ``[A-Za-z0-9._-]{1,128}``, values up to 256 characters."""
    if len(metadata) > MAX_METADATA:
        raise InvalidArgument(f"metadata holds at most {MAX_METADATA} entries")
    for k, v in metadata.items():
        if not isinstance(k, str) or not _KEY.fullmatch(k):
            raise InvalidArgument("metadata names must match [A-Za-z0-9._-]{1,128}")
        check_text(v, "metadata values", MAX_METADATA_VALUE)
    return dict(metadata)


def check_rate_limit(value: float | None) -> float | None:
    """Requests per second, > 0 and at most 1,000,000; None: the server default."""
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or not 0 < value <= MAX_RATE_LIMIT):
        raise InvalidArgument("rate_limit must be a number of requests per second, above 0 "
                              "and at most 1000000")
    return float(value)


def check_description(text: str) -> str:
    return check_text(text, "description", MAX_DESCRIPTION)


def check_display_name(text: str | None) -> str:
    return "" if text is None else check_text(text, "display_name", MAX_DISPLAY_NAME)


def check_ttl(value: int | str | None, default: int, maximum: int) -> int:
    """A token TTL in seconds (or ``"30d"``): at least 60 s, at most ``maximum``. One rule
    and one message whatever the interface (REST, SDK, CLI): a TTL under the minimum,
    zero and negative numbers included, is refused as ``ttl must be at least 60
    seconds``."""
    if value is None:
        return min(default, maximum)
    too_short = f"ttl must be at least {MIN_TOKEN_TTL} seconds"
    if isinstance(value, int) and not isinstance(value, bool) and value < MIN_TOKEN_TTL:
        raise InvalidArgument(too_short)
    if isinstance(value, str) and _NOT_POSITIVE.fullmatch(value):
        raise InvalidArgument(too_short)
    seconds = parse_duration(value, what="ttl")
    if seconds < MIN_TOKEN_TTL:
        raise InvalidArgument(too_short)
    if seconds > maximum:
        raise InvalidArgument(f"ttl must be at most {maximum} seconds (the server's maximum "
                              "token TTL)")
    return seconds


def canonical_subject(value: str) -> str:
    """The canonical form of one certificate subject (module docstring)."""
    check_text(value, "certificate subject", MAX_SUBJECT_LENGTH, empty=False)
    value = value.strip()
    san = _SAN.fullmatch(value)
    if san is not None and "=" not in san.group(1):
        kind, rest = san.group(1).upper(), san.group(2).strip()
        if kind == "DNS":
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?", rest):
                raise InvalidArgument(f"certificate subject {value!r}: not a DNS name")
            return "DNS:" + rest.lower().rstrip(".")
        if kind == "IP":
            try:
                return "IP:" + str(ipaddress.ip_address(rest))
            except ValueError:
                raise InvalidArgument(f"certificate subject {value!r}: not an IP address"
                                      ) from None
        if kind == "EMAIL":
            if "@" not in rest or " " in rest:
                raise InvalidArgument(f"certificate subject {value!r}: not an email address")
            return "email:" + rest
        if " " in rest:
            raise InvalidArgument(f"certificate subject {value!r}: not a URI")
        return "URI:" + rest
    try:
        name = x509.Name.from_rfc4514_string(_DN_SEPARATOR_SPACE.sub(r"\1", value),
                                             _DN_NAMES)
    except ValueError:
        raise InvalidArgument(
            f"certificate subject {value!r} is neither an RFC 4514 distinguished name "
            "(CN=app,O=Example) nor DNS:, URI:, email: or IP: followed by a value") from None
    if not len(name):
        raise InvalidArgument("certificate subject must not be an empty name")
    return name.rfc4514_string()


def check_subjects(values: Iterable[str]) -> tuple[str, ...]:
    """Canonical subjects, de-duplicated in order; at most 16."""
    out = tuple(dict.fromkeys(canonical_subject(v) for v in values))
    if len(out) > MAX_SUBJECTS:
        raise InvalidArgument(f"a principal maps at most {MAX_SUBJECTS} certificate subjects")
    return out


def parse_grantee(value: str) -> tuple[str, str]:
    """``principal:NAME`` or ``role:NAME`` to (kind, name)."""
    kind, sep, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not sep or kind not in ("principal", "role"):
        raise InvalidArgument("grantee must be 'principal:NAME' or 'role:NAME'")
    if kind == "role":
        return kind, check_role_name(name)
    check_principal_name(name, "grantee principal name")
    if name == ROOT:
        raise InvalidArgument("root holds every permission; grants to it are meaningless")
    return kind, name
