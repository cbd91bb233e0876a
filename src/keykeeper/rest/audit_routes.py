"""The audit rows of the route table (rest/routes.py appends them): search, chain head,
checkpoint public key, value hashing, a checkpoint on request and server-side
verification.

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import audit_handlers as h
from keykeeper.rest import audit_schemas as s

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["audit_routes"]

A = "/v1/audit"


def audit_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("GET", A, "audit.search", h.search, None, s.AuditPage,
              "Search the audit records of every node (filters: principal, key, operation "
              "(a trailing * matches a prefix), outcome (success, error, pending, requested "
              "or an error code; an approval whose execution failed counts as that error), "
              "chain, request_id, approval_id, execution (executed, failed or "
              "failed:<code>: the approvals that ran a request), since, until (RFC 3339, or "
              "a duration ago such as 1h); order desc (default) or asc; paginated)",
              query=("principal", "key", "operation", "outcome", "chain", "request_id",
                     "approval_id", "execution", "since", "until", "order", "page_size",
                     "page_token")),
        Route("GET", A + "/head", "audit.head", h.head, None, s.AuditHead,
              "The last written record of an audit chain (default: the answering "
              "process's), or with seq the hash of that record, to check audit files for "
              "truncation and forged records", query=("chain", "seq")),
        Route("GET", A + "/public-key", "audit.public_key", h.public_key, None,
              s.AuditPublicKey, "The Ed25519 public key (PEM) that signs audit checkpoints"),
        Route("POST", A + "/hash", "audit.hash", h.hash_value, s.AuditHashRequest,
              s.AuditHashResponse, "HMAC a value as audit records hold tokens and context "
              "values, to search for it", mutating=False),
        # Not "audit.checkpoint": that names the checkpoint records themselves.
        Route("POST", A + "/checkpoint", "audit.checkpoint_now", h.checkpoint, None,
              s.AuditHead, "Sign this process's audit chain now (a checkpoint, reason "
              "requested) and answer its chain, seq and hash: checkpoint, then copy the "
              "audit file, and the copy verifies offline up to it", mutating=False),
        Route("POST", A + "/verify", "audit.verify", h.verify, s.AuditVerifyRequest,
              s.AuditVerifyReport, "Verify this node's audit files, HMACs included",
              mutating=False),
    )
