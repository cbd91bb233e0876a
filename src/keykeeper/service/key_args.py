"""Arguments of key operations: validation of what a caller sends to create or update a
key, the dual-control gate's shape, and the JSON summary of a key an approved request
answers with (never material)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from keykeeper.domain.durations import parse_duration
from keykeeper.domain.keys import Key
from keykeeper.domain.names import DEFAULT_NAMESPACE, validate_name
from keykeeper.errors import InvalidArgument
from keykeeper.service.context import RequestContext
from keykeeper.service.identity_views import rfc3339

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_LABELS",
    "MIN_ROTATION_PERIOD",
    "PENDING_DAYS_DEFAULT",
    "PENDING_DAYS_MAX",
    "PENDING_DAYS_MIN",
    "CreateKey",
    "Gate",
    "check_client_labels",
    "check_description",
    "check_fraction",
    "check_labels",
    "check_origin",
    "check_period",
    "check_rotation_period",
    "check_text",
    "check_time",
    "check_usage_limit",
    "key_summary",
]


class Gate(Protocol):
    """The dual-control gate (service/approvals.py): returns when the call may proceed,
    raises ApprovalRequired when it must wait for approvals."""

    def __call__(self, ctx: RequestContext, operation: str, arguments: dict[str, Any], *,
                 summary: str, namespace: str | None = None,
                 key_id: str | None = None) -> None: ...

MIN_ROTATION_PERIOD = 3600
MAX_LABELS = 64
MAX_DESCRIPTION = 1024
PENDING_DAYS_MIN, PENDING_DAYS_MAX, PENDING_DAYS_DEFAULT = 7, 30, 30


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"at most {MAX_LABELS} labels")
    for k, v in labels.items():
        validate_name(k, "label name")
        if len(v) > 256:
            raise InvalidArgument("label values are at most 256 characters")
        check_text(v, "label values")
    return dict(labels)


KMIP_LABEL_PREFIX = "kmip."


def check_client_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels a REST or CLI caller gives: as :func:`check_labels`, and none named
    ``kmip.*``, which hold KMIP attributes (kmip/attributes_store.py) and change over KMIP
    only. InvalidArgument."""
    if any(k.startswith(KMIP_LABEL_PREFIX) for k in labels):
        raise InvalidArgument("labels named kmip.* hold KMIP attributes: change them over "
                              "KMIP")
    return check_labels(labels)


def check_text(text: str, what: str) -> str:
    """Free text is stored as given, except NUL, which PostgreSQL text cannot hold."""
    if "\x00" in text:
        raise InvalidArgument(f"{what} must not contain NUL characters")
    return text


def check_description(text: str) -> str:
    check_text(text, "description")
    if len(text) > MAX_DESCRIPTION:
        raise InvalidArgument(f"description is at most {MAX_DESCRIPTION} characters")
    return text


MAX_PERIOD = 2 ** 31 - 1  # seconds (about 68 years): the columns are 32-bit integers


def check_period(value: int | str, what: str) -> int:
    """A rotation period or crypto-period override in seconds (or "730d"): from 1 hour
    (the floor Cloud KMS also sets) to 2^31 - 1 seconds (about 68 years). The rule that
    RUP >= OUP is domain.lifecycle.validate_periods, checked on the pair."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        raise InvalidArgument(f"{what} must be at least 1 hour")
    seconds = parse_duration(value, what=what)
    if seconds < MIN_ROTATION_PERIOD:
        raise InvalidArgument(f"{what} must be at least 1 hour")
    if seconds > MAX_PERIOD:
        raise InvalidArgument(f"{what} must be at most {MAX_PERIOD} seconds (about 68 years)")
    return seconds


def check_rotation_period(value: int | str) -> int:
    """Seconds (or "90d"), 1 hour to about 68 years (:func:`check_period`)."""
    return check_period(value, "rotation_period")


EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)  # + a 100-year period still fits a datetime


def check_time(value: datetime | str, what: str) -> datetime:
    """An RFC 3339 time with a zone (``Z`` or an offset), returned in UTC; InvalidArgument
    if malformed, without a zone, or outside 1970-01-01 .. 9000-01-01 UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise InvalidArgument(f"{what} must be an RFC 3339 time such as "
                                  "'2027-01-31T12:00:00Z'") from None
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{what} must be an RFC 3339 time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"{what} must carry a time zone ('Z' or an offset such as "
                              "'+02:00')")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        raise InvalidArgument(f"{what} must be between 1970-01-01 and 9000-01-01 UTC")
    return utc


def check_usage_limit(value: int, default: int | None) -> int:
    """A hard limit of protect operations per version: an integer >= 1, and at most the
    algorithm's own limit ``default`` when it has one (2^32 for AES-GCM and
    ChaCha20-Poly1305 with random nonces, NIST SP 800-38D §8.3)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument("usage_limit must be an integer of at least 1")
    if default is not None and value > default:
        raise InvalidArgument(
            f"usage_limit must be at most {default} for this algorithm (random 96-bit "
            "nonces: NIST SP 800-38D §8.3)")
    return value


def check_fraction(value: float) -> float:
    """``usage_rotate_fraction``: a number from 0.01 to 1."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not 0.01 <= value <= 1):
        raise InvalidArgument("usage_rotate_fraction must be a number from 0.01 to 1")
    return float(value)


class CreateKey:
    """Validated arguments of key creation. The lifecycle fields checked here alone;
    those that depend on the algorithm, the namespace or the time (usage_limit's ceiling,
    the dates against now) are checked by service/key_lifecycle.py."""

    def __init__(self, *, name: str, namespace: str | None = None, purpose: str | None = None,
                 algorithm: str | None = None, rotation_period: int | str | None = None,
                 labels: Mapping[str, str] | None = None, description: str | None = None,
                 exportable: bool = False, protection: str | None = None,
                 activation_date: datetime | str | None = None,
                 deactivation_date: datetime | str | None = None,
                 usage_limit: int | None = None, usage_rotate_fraction: float | None = None,
                 originator_usage_period: int | str | None = None,
                 recipient_usage_period: int | str | None = None,
                 origin: str | None = None) -> None:
        self.name = validate_name(name, "key name")
        # Issue 6 §3/§4: "external" keys get their material by import; HSM keys neither
        # import nor export (service/key_import.py check_origin).
        self.origin = check_origin(origin, protection, exportable, rotation_period)
        self.namespace = validate_name(namespace or DEFAULT_NAMESPACE, "namespace")
        # As AWS KMS: with neither purpose nor algorithm, a symmetric encryption key.
        self.purpose = purpose if (purpose or algorithm) else "encrypt"
        self.algorithm = algorithm
        self.rotation_period = (None if rotation_period is None
                                else check_rotation_period(rotation_period))
        self.activation_date = (None if activation_date is None
                                else check_time(activation_date, "activation_date"))
        self.deactivation_date = (None if deactivation_date is None
                                  else check_time(deactivation_date, "deactivation_date"))
        self.usage_limit = None if usage_limit is None else check_usage_limit(usage_limit, None)
        self.usage_rotate_fraction = (None if usage_rotate_fraction is None
                                      else check_fraction(usage_rotate_fraction))
        self.originator_usage_period = (
            None if originator_usage_period is None
            else check_period(originator_usage_period, "originator_usage_period"))
        self.recipient_usage_period = (
            None if recipient_usage_period is None
            else check_period(recipient_usage_period, "recipient_usage_period"))
        self.labels = check_labels(labels or {})
        self.description = check_description(description or "")
        self.exportable = exportable
        if protection not in (None, "software", "hsm"):
            raise InvalidArgument("protection must be 'software' or 'hsm'")
        # "hsm": generated and used in the PKCS#11 token (custody/hsm/; the algorithm and
        # the configured token are checked at creation, service/versions.py).
        self.protection = protection or "software"


ORIGINS = ("generated", "external")


def check_origin(origin: str | None, protection: str | None, exportable: bool,
                 rotation_period: object) -> str:
    """The key's origin ("generated" by default, or "external"); InvalidArgument for an
    unknown one, an exportable or external key with ``protection: "hsm"`` (HSM keys are
    never exportable; import into them is not supported), or an external key with a
    rotation period (imported keys rotate by importing new material)."""
    value = origin or "generated"
    if value not in ORIGINS:
        raise InvalidArgument(f"origin must be 'generated' or 'external', not "
                              f"'{str(value)[:32]}'")
    if protection == "hsm" and exportable:
        raise InvalidArgument("an HSM-protected key is never exportable: its material "
                              "never leaves the token")
    if protection == "hsm" and value == "external":
        raise InvalidArgument("import into HSM-protected keys is not supported: create an "
                              "external key with protection 'software'")
    if value == "external" and rotation_period is not None:
        raise InvalidArgument("an external key is not rotated automatically: import new "
                              "material instead (no rotation_period)")
    return value


def key_summary(key: Key) -> dict[str, Any]:
    """A key as the JSON result of an approved request (no material, ever)."""
    return {"id": key.id, "namespace": key.namespace, "name": key.name,
            "state": str(key.state), "primary_version": key.primary_version,
            "destruction_time": rfc3339(key.destruction_time),
            "activation_date": rfc3339(key.activation_date),
            "min_encryption_version": key.min_encryption_version,
            "min_decryption_version": key.min_decryption_version,
            "versions": [{"version": v.version, "state": str(v.state),
                          "protect_count": v.protect_count,
                          "destroyed_at": rfc3339(v.destroyed_at),
                          "compromised_at": rfc3339(v.compromised_at)}
                         for v in key.versions]}


