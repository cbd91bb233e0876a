"""Audit routes of the SDK (``/v1/audit``): search, chain heads, the checkpoint public key,
value hashing, checkpoints on request and server-side verification. Offline verification
of audit files needs no server: ``keykeeper audit verify`` (the CLI) runs it locally."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec

from keykeeper.client._http import Http

__all__ = [
    "AuditChainSummary",
    "AuditHead",
    "AuditMixin",
    "AuditPage",
    "AuditProblem",
    "AuditRecord",
    "AuditReport",
]


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One audit record as written (docs/audit-format.md). ``token_hmac`` and the values of
    ``context`` are ``hmac-sha256:<hex>`` (compare with :meth:`AuditMixin.audit_hash`).
    ``execution`` (``executed`` or ``failed:<code>``) and ``on_behalf_of`` (the requester)
    are on the approving call that ran an approved request."""

    chain: str
    seq: int
    prev: str
    time: datetime
    operation: str
    outcome: str
    request_id: str | None = None
    interface: str | None = None
    phase: str | None = None
    principal: str | None = None
    source: str | None = None
    token_hmac: str | None = None
    error_code: str | None = None
    namespace: str | None = None
    key_id: str | None = None
    key_version: int | None = None
    items: int | None = None
    failed_items: int | None = None
    approval_id: str | None = None
    execution: str | None = None
    on_behalf_of: str | None = None
    context: dict[str, str] | None = None
    detail: str | None = None
    reason: str | None = None
    public_key: str | None = None
    allow_compromised: bool | None = None  # the recovery flag was needed and used
    destination_key_id: str | None = None  # a rewrap into another key: that key
    wrapping_key_fingerprint: str | None = None  # key import/export: SHA-256 hex
    hmac: str | None = None
    signature: str | None = None


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    records: list[AuditRecord]
    next_page_token: str | None = None


class AuditHead(msgspec.Struct, frozen=True, kw_only=True):
    """The last record of a chain the server knows: ``seq`` and its line hash."""

    chain: str
    seq: int
    hash: str
    checkpoint: int | None = None


class AuditProblem(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    message: str
    chain: str | None = None
    seq: int | None = None
    file: str | None = None
    line: int | None = None


class AuditChainSummary(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    records: int
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    signed_through: int | None = None
    head_confirmed: int | None = None
    server_head: int | None = None


class AuditReport(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/audit/verify``: ``ok`` is True when ``problems`` is empty."""

    ok: bool
    records: int
    files: list[str]
    chains: list[AuditChainSummary]
    problems: list[AuditProblem]
    notes: list[str]


class _PublicKey(msgspec.Struct):
    public_key: str


class _Hash(msgspec.Struct):
    hmac: str


def _time(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    return value


class AuditMixin:
    """Audit routes; mixed into :class:`Client`. Each needs the ``audit.read`` permission
    (``audit.verify`` for :meth:`audit_verify` and :meth:`audit_checkpoint`)."""

    _http: Http

    def audit_search(
        self,
        *,
        principal: str | None = None,
        key: str | None = None,
        operation: str | None = None,
        outcome: str | None = None,
        chain: str | None = None,
        request_id: str | None = None,
        approval_id: str | None = None,
        execution: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        oldest_first: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> AuditPage:
        """``GET /v1/audit``: one page of records of every node, newest first.

        ``operation`` may end in ``*`` (``key.*``); ``outcome`` is ``success``, ``error``,
        ``pending``, ``requested`` or an error code (an approval whose execution failed
        counts as that error); ``execution`` is ``executed``, ``failed`` or
        ``failed:<code>`` (approving calls that ran a request); ``since``/``until`` are
        datetimes, RFC 3339 strings or durations ago (``"1h"``); ``key`` an id,
        ``namespace:name`` or name.
        """
        params = {"principal": principal, "key": key, "operation": operation,
                  "outcome": outcome, "chain": chain, "request_id": request_id,
                  "approval_id": approval_id, "execution": execution,
                  "since": _time(since), "until": _time(until),
                  "order": "asc" if oldest_first else None, "page_size": page_size,
                  "page_token": page_token}
        return self._http.call("GET", "/v1/audit", AuditPage, params=params)

    def iter_audit(self, **filters: object) -> Iterator[AuditRecord]:
        """Every matching record, page after page (filters as :meth:`audit_search`)."""
        token: str | None = None
        while True:
            page = self.audit_search(page_token=token, **filters)  # type: ignore[arg-type]
            yield from page.records
            token = page.next_page_token
            if not token:
                return

    def audit_head(self, chain: str | None = None, *, seq: int | None = None) -> AuditHead:
        """``GET /v1/audit/head``: the chain's last written record (default: the answering
        process's chain), or with ``seq`` that record's hash; NotFound for a chain or a
        record the server does not know."""
        return self._http.call("GET", "/v1/audit/head", AuditHead,
                               params={"chain": chain, "seq": seq})

    def audit_public_key(self) -> str:
        """``GET /v1/audit/public-key``: PEM of the key that signs checkpoints."""
        return self._http.call("GET", "/v1/audit/public-key", _PublicKey).public_key

    def audit_hash(self, value: str) -> str:
        """``POST /v1/audit/hash``: ``value`` as records hold it (``hmac-sha256:<hex>``)."""
        return self._http.call("POST", "/v1/audit/hash", _Hash, body={"value": value}).hmac

    def audit_checkpoint(self) -> AuditHead:
        """``POST /v1/audit/checkpoint`` (``audit.verify``): the answering process signs its
        chain now; answers the checkpoint's chain, seq and line hash. A copy of the audit
        file taken afterwards verifies offline up to it (``verify --to-checkpoint``)."""
        return self._http.call("POST", "/v1/audit/checkpoint", AuditHead)

    def audit_verify(self, *, from_checkpoint: bool = False) -> AuditReport:
        """``POST /v1/audit/verify``: the server verifies its node's audit files, HMACs
        included, and reports every problem."""
        return self._http.call("POST", "/v1/audit/verify", AuditReport,
                               body={"from_checkpoint": from_checkpoint})
