"""Compromise-response and destruction-receipt routes of the SDK: version compromise,
the compromise report, bulk revocation, receipts, and :meth:`LifecycleMixin.rewrap_many`
(move many ciphertexts to the current primary version, in constant memory).

Operations under dual control (version compromise, bulk revocation) raise
:class:`keykeeper.errors.ApprovalRequired` when the server answers 202."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import msgspec

from keykeeper.client._http import Http, key_path
from keykeeper.client.models import EncryptResult
from keykeeper.errors import InvalidArgument, KeykeeperError

__all__ = [
    "BulkRevokeResult",
    "CompromiseReport",
    "CompromisedVersion",
    "LifecycleMixin",
    "PrincipalUsage",
    "RewrapOutcome",
    "ciphertext_key_id",
]

RewrapItem = str | Mapping[str, Any]
_FATAL = frozenset(("unauthenticated", "unavailable", "sealed"))


class CompromisedVersion(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    key: str
    version: int
    state: str
    compromised_at: str | None
    compromise_reason: str | None


class PrincipalUsage(msgspec.Struct, frozen=True, kw_only=True):
    principal: str
    operations: int
    failures: int
    by_operation: dict[str, int]
    first_use: str | None
    last_use: str | None
    sources: list[str]
    uses_after_compromise: int


class UsageTotals(msgspec.Struct, frozen=True, kw_only=True):
    operations: int
    failures: int
    principals: int
    by_operation: dict[str, int]
    uses_after_compromise: int
    first_use: str | None
    last_use: str | None


class CompromiseReport(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    key: str
    version: int | None
    compromise_time: str | None
    compromise_reason: str | None
    principals: list[PrincipalUsage]
    totals: UsageTotals
    uses_after_compromise: list[dict[str, Any]]
    truncated: bool


class RevokeError(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    code: str
    detail: str


class BulkRevokeResult(msgspec.Struct, frozen=True, kw_only=True):
    dry_run: bool
    matched: int
    keys: list[str]
    truncated: bool
    revoked: int
    failed: int
    errors: list[RevokeError]


class _Receipts(msgspec.Struct, frozen=True):
    receipts: list[dict[str, Any]]


class _ReceiptKey(msgspec.Struct, frozen=True):
    public_key: str
    algorithm: str = "Ed25519"


class RewrapOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One item of :meth:`LifecycleMixin.rewrap_many`: the new ciphertext and version, or
    the error (``error_code``, ``error_detail``) of that item alone."""

    index: int
    key: str | None
    ciphertext: str | None = None
    key_version: int | None = None
    error_code: str | None = None
    error_detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


def ciphertext_key_id(ciphertext: str) -> str:
    """The key id inside a keykeeper ciphertext (``keykeeper:v1:<key id>:<version>:...``).
    Raises InvalidArgument for anything else."""
    parts = ciphertext.split(":", 4)
    if len(parts) < 5 or parts[0] != "keykeeper" or not parts[2]:
        raise InvalidArgument("not a keykeeper ciphertext (keykeeper:v1:<key id>:<version>:...)")
    return parts[2]


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class LifecycleMixin:
    """Mixed into :class:`~keykeeper.client.Client`."""

    _http: Http

    def compromise_version(self, key: str, version: int, reason: str, *,
                           compromise_time: datetime | str | None = None
                           ) -> CompromisedVersion:
        """``POST /v1/keys/{key}/versions/{version}/compromise``: mark one version
        compromised (dual control). ``compromise_time``: when it happened (RFC 3339)."""
        body = {"reason": reason, "compromise_time": _iso(compromise_time)}
        return self._http.call("POST", key_path(key, "versions", str(version), "compromise"),
                               CompromisedVersion, body=body)

    def compromise_report(self, key: str, *, version: int | None = None) -> CompromiseReport:
        """``GET /v1/keys/{key}/compromise-report``: who used the key (or version), how
        often, first and last use, and the uses after the compromise time."""
        return self._http.call("GET", key_path(key, "compromise-report"), CompromiseReport,
                               params={"version": version})

    def receipts(self, key: str) -> list[dict[str, Any]]:
        """``GET /v1/keys/{key}/receipts``: the key's signed destruction receipts (verify
        them with :func:`keykeeper.client.receipts.verify_receipt`)."""
        return self._http.call("GET", key_path(key, "receipts"), _Receipts).receipts

    def receipt_public_key(self) -> str:
        """``GET /v1/sys/receipt-key``: the PEM Ed25519 key that signs receipts."""
        return self._http.call("GET", "/v1/sys/receipt-key", _ReceiptKey, auth=False).public_key

    def bulk_revoke(self, *, reason: str | None = None, namespace: str | None = None,
                    created_by: str | None = None, algorithm: str | None = None,
                    created_before: datetime | str | None = None,
                    dry_run: bool = False) -> BulkRevokeResult:
        """``POST /v1/keys/revoke``: mark every key matching the query compromised (dual
        control), or with ``dry_run`` only list them. At least one filter."""
        body = {"namespace": namespace, "created_by": created_by, "algorithm": algorithm,
                "created_before": _iso(created_before), "reason": reason,
                "dry_run": dry_run}
        return self._http.call("POST", "/v1/keys/revoke", BulkRevokeResult, body=body)

    def rewrap_many(self, items: Iterable[RewrapItem], *, key: str | None = None,
                    allow_compromised: bool = False,
                    destination_key: str | None = None) -> Iterator[RewrapOutcome]:
        """Re-encrypt each ciphertext under its key's current primary version (rotate
        first), one request per item, yielding as it goes (constant memory). An item is a
        ciphertext string or ``{"ciphertext", "context"?, "key"?}``; its key is the item's
        ``key``, else ``key``, else the id inside the ciphertext. ``allow_compromised``
        lets a compromised version decrypt for this (audited); ``destination_key`` moves
        every item into that key instead (for a key compromised as a whole, which cannot
        rotate). An item's failure is its
        outcome's error; Unauthenticated, Sealed and Unavailable (no connection) raise."""
        for index, item in enumerate(items):
            target: str | None = key
            text: Any
            context: Any = None
            try:
                if isinstance(item, str):
                    text, context = item, None
                elif isinstance(item, Mapping):
                    text, context = item.get("ciphertext"), item.get("context")
                    target = item.get("key") or key
                    if not isinstance(text, str):
                        raise InvalidArgument("ciphertext must be a string")
                    if context is not None and not (isinstance(context, Mapping) and all(
                            isinstance(k, str) and isinstance(v, str)
                            for k, v in context.items())):
                        raise InvalidArgument("context must map strings to strings")
                    if target is not None and not isinstance(target, str):
                        raise InvalidArgument("key must be a string")
                else:
                    raise InvalidArgument("an item is a ciphertext string or an object")
                target = target or ciphertext_key_id(text)
                result = self._rewrap_one(target, text, context, allow_compromised,
                                          destination_key)
            except KeykeeperError as exc:
                if exc.code in _FATAL:
                    raise  # every later item would fail the same way
                yield RewrapOutcome(index=index, key=target, error_code=exc.code,
                                    error_detail=exc.detail)
                continue
            yield RewrapOutcome(index=index, key=target, ciphertext=result.ciphertext,
                                key_version=result.key_version)

    def _rewrap_one(self, key: str, ciphertext: str, context: Mapping[str, str] | None,
                    allow_compromised: bool, destination_key: str | None) -> EncryptResult:
        body: dict[str, Any] = {"ciphertext": ciphertext,
                                "context": dict(context) if context else None}
        if allow_compromised:
            body["allow_compromised"] = True
        if destination_key is not None:
            body["destination_key"] = destination_key
        return self._http.call("POST", key_path(key, "rewrap"), EncryptResult, body=body)
