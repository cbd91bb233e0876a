"""msgspec structs of the audit routes (``/v1/audit``): they validate requests and produce
the OpenAPI schema. A record is :class:`keykeeper.audit.records.AuditRecord` as written."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from keykeeper.audit.records import AuditRecord

__all__ = [
    "AuditChain",
    "AuditHashRequest",
    "AuditHashResponse",
    "AuditHead",
    "AuditPage",
    "AuditProblem",
    "AuditPublicKey",
    "AuditRecord",
    "AuditVerifyReport",
    "AuditVerifyRequest",
]


class AuditPage(Struct, omit_defaults=True):
    records: list[AuditRecord]
    next_page_token: str | None = None


class AuditHead(Struct):
    """A chain's head (``GET /v1/audit/head``), or the checkpoint just written
    (``POST /v1/audit/checkpoint``: ``seq`` and ``checkpoint`` are its seq)."""

    chain: str
    seq: int                     # 0: nothing recorded yet
    hash: str                    # hex SHA-256 of that record's line (what the next prev holds)
    checkpoint: int | None       # seq of the last checkpoint known, if any


class AuditPublicKey(Struct):
    public_key: str              # PEM (SubjectPublicKeyInfo) of the checkpoint key (Ed25519)


class AuditHashRequest(Struct, forbid_unknown_fields=True):
    value: Annotated[str, Meta(max_length=65536)]


class AuditHashResponse(Struct):
    hmac: str                    # hmac-sha256:<hex>, as records hold token and context values


class AuditVerifyRequest(Struct, forbid_unknown_fields=True):
    from_checkpoint: bool = False


class AuditProblem(Struct, omit_defaults=True):
    kind: str
    message: str
    chain: str | None = None
    seq: int | None = None
    file: str | None = None
    line: int | None = None


class AuditChain(Struct):
    chain: str
    records: int
    first_seq: int | None
    last_seq: int | None
    checkpoints: int
    signed_through: int | None
    head_confirmed: int | None
    server_head: int | None = None


class AuditVerifyReport(Struct):
    ok: bool
    records: int
    files: list[str]
    chains: list[AuditChain]
    problems: list[AuditProblem]
    notes: list[str]
