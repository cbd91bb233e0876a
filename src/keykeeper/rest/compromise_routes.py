"""The compromise-response and destruction-receipt rows of the route table
(rest/routes.py appends them): version compromise, the compromise report, bulk
revocation, and destruction receipts with their signing key.

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import compromise_handlers as h
from keykeeper.rest import compromise_schemas as s

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["compromise_routes"]

K = "/v1/keys/{key}"


def compromise_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("POST", K + "/versions/{version}/compromise", "key.compromise_version",
              h.compromise_version, s.CompromiseVersionRequest, s.CompromisedVersion,
              "Mark one version compromised (reason, compromise_time?; dual control): it "
              "refuses protect operations at once, and processes only with "
              "allow_compromised"),
        Route("GET", K + "/compromise-report", "key.compromise_report", h.compromise_report,
              None, s.CompromiseReport,
              "Who used the key (or ?version=N) from the audit trail: per principal counts, "
              "operations, first and last use, sources; uses after the compromise time",
              query=("version",)),
        Route("GET", K + "/receipts", "key.receipt", h.receipts, None, s.ReceiptList,
              "Signed destruction receipts of the key (also once it is destroyed)"),
        Route("GET", "/v1/sys/receipt-key", "sys.receipt_key", h.receipt_key, None,
              s.ReceiptKey, "The Ed25519 public key (PEM) that signs destruction receipts",
              auth=False),
        Route("POST", "/v1/keys/revoke", "key.bulk_revoke", h.bulk_revoke,
              s.BulkRevokeRequest, s.BulkRevokeResponse,
              "Mark every key matching a query (namespace, created_by, algorithm, "
              "created_before; at least one) compromised, each on its own (dual control); "
              "dry_run lists them"),
    )
