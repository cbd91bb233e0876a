"""Arguments of key operations: validation of what a caller sends to create or update a
key, the dual-control gate's shape, and the JSON summary of a key an approved request
answers with (never material)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from keykeeper.domain.durations import parse_duration
from keykeeper.domain.keys import Key
from keykeeper.domain.names import DEFAULT_NAMESPACE, validate_name
from keykeeper.errors import InvalidArgument
from keykeeper.service.context import RequestContext
from keykeeper.service.identity_views import rfc3339

__all__ = ["MAX_DESCRIPTION", "MAX_LABELS", "MIN_ROTATION_PERIOD", "PENDING_DAYS_DEFAULT",
           "PENDING_DAYS_MAX", "PENDING_DAYS_MIN", "CreateKey", "Gate", "check_description",
           "check_labels", "check_text", "key_summary"]


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


class CreateKey:
    """Validated arguments of key creation."""

    def __init__(self, *, name: str, namespace: str | None = None, purpose: str | None = None,
                 algorithm: str | None = None, rotation_period: int | str | None = None,
                 labels: Mapping[str, str] | None = None, description: str | None = None,
                 exportable: bool = False, protection: str | None = None) -> None:
        self.name = validate_name(name, "key name")
        self.namespace = validate_name(namespace or DEFAULT_NAMESPACE, "namespace")
        # As AWS KMS: with neither purpose nor algorithm, a symmetric encryption key.
        self.purpose = purpose if (purpose or algorithm) else "encrypt"
        self.algorithm = algorithm
        self.rotation_period = None
        if rotation_period is not None:
            self.rotation_period = parse_duration(rotation_period, what="rotation_period")
            if self.rotation_period < MIN_ROTATION_PERIOD:
                raise InvalidArgument("rotation_period must be at least 1 hour")
        self.labels = check_labels(labels or {})
        self.description = check_description(description or "")
        self.exportable = exportable
        if protection not in (None, "software"):
            raise InvalidArgument("protection must be 'software' (HSM protection is not "
                                  "configured on this server)")


def key_summary(key: Key) -> dict[str, Any]:
    """A key as the JSON result of an approved request (no material, ever)."""
    return {"id": key.id, "namespace": key.namespace, "name": key.name,
            "state": str(key.state), "primary_version": key.primary_version,
            "destruction_time": rfc3339(key.destruction_time),
            "versions": [{"version": v.version, "state": str(v.state)} for v in key.versions]}


