"""SQLAlchemy Core tables. Key material is stored only wrapped (``wrapped_*`` columns);
tokens only as SHA-256 hashes. Schema changes go through Alembic (store/migrations)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

system_config = Table(
    "system_config", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

namespaces = Table(
    "namespaces", metadata,
    Column("name", String(128), primary_key=True),
    Column("wrapped_kek", LargeBinary, nullable=False),
    Column("allow_legacy_rsa_2048", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Added by 0002. An erased namespace keeps its row (names are never reused) with an
    # empty wrapped_kek: crypto-erasure of every key below it.
    Column("description", Text, nullable=False, default="", server_default=""),
    Column("rate_limit", Float, nullable=True),           # requests per second, all callers
    Column("created_by", String(128), nullable=False, default="", server_default=""),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    # Added by 0003: lifecycle defaults for keys created here (seconds; NULL: none / the
    # SP 800-57 default).
    Column("rotation_period", Integer, nullable=True),
    Column("originator_usage_period", Integer, nullable=True),
    Column("recipient_usage_period", Integer, nullable=True),
)

keys = Table(
    "keys", metadata,
    Column("id", String(34), primary_key=True),
    Column("namespace", String(128), ForeignKey("namespaces.name"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("algorithm", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("primary_version", Integer, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("exportable", Boolean, nullable=False, default=False),
    Column("protection", String(16), nullable=False, default="software"),
    Column("rotation_period", Integer, nullable=True),
    Column("next_rotation_time", DateTime(timezone=True), nullable=True),
    Column("destruction_time", DateTime(timezone=True), nullable=True),
    Column("compromised_at", DateTime(timezone=True), nullable=True),
    Column("compromise_reason", Text, nullable=True),
    Column("created_by", String(256), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Added by 0003 (lifecycle): KMIP Activation / Deactivation Date; Vault's minimum
    # versions (0: see domain/lifecycle.py); usage limit of protect operations per version
    # (NULL: the algorithm's default) and the fraction at which rotation starts (NULL: 0.9);
    # crypto-period overrides in seconds (NULL: the namespace's, then SP 800-57's default);
    # why a rotation is due before its time ("usage").
    Column("activation_date", DateTime(timezone=True), nullable=True),
    Column("deactivation_date", DateTime(timezone=True), nullable=True),
    Column("min_encryption_version", Integer, nullable=False, default=0, server_default="0"),
    Column("min_decryption_version", Integer, nullable=False, default=0, server_default="0"),
    Column("usage_limit", BigInteger, nullable=True),
    Column("usage_rotate_fraction", Float, nullable=True),
    Column("originator_usage_period", Integer, nullable=True),
    Column("recipient_usage_period", Integer, nullable=True),
    Column("rotation_reason", String(32), nullable=True),
    # 0004: "generated" (made here) or "external" (material imported, issue 6 §3).
    Column("origin", String(16), nullable=False, default="generated",
           server_default="generated"),
    UniqueConstraint("namespace", "name", name="uq_keys_namespace_name"),
    Index("ix_keys_state", "state"),
    Index("ix_keys_next_rotation_time", "next_rotation_time"),
    Index("ix_keys_destruction_time", "destruction_time"),
    Index("ix_keys_activation_date", "activation_date"),        # scheduler scans (0003)
    Index("ix_keys_deactivation_date", "deactivation_date"),
    Index("ix_keys_originator_usage_period", "originator_usage_period"),
)

key_labels = Table(
    "key_labels", metadata,
    Column("key_id", String(34), ForeignKey("keys.id"), primary_key=True),
    Column("label", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
    Index("ix_key_labels_label_value", "label", "value"),
)

key_versions = Table(
    "key_versions", metadata,
    Column("key_id", String(34), ForeignKey("keys.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("state", String(32), nullable=False),
    Column("wrapped_material", LargeBinary, nullable=True),
    Column("public_key", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("destroyed_at", DateTime(timezone=True), nullable=True),
    # Added by 0003: protect operations reserved on this version across every node (an
    # upper bound of those done, exact once nodes return unused reservations); when the
    # version was deactivated (crypto-period) or marked compromised, and why.
    Column("protect_count", BigInteger, nullable=False, default=0, server_default="0"),
    Column("deactivated_at", DateTime(timezone=True), nullable=True),
    Column("compromised_at", DateTime(timezone=True), nullable=True),
    Column("compromise_reason", Text, nullable=True),
    # 0004: an HSM-protected version (protection "hsm") has no wrapped material; its key
    # lives in the PKCS#11 token under this CKA_ID (hex), non-extractable.
    Column("hsm_key_id", String(64), nullable=True),
    Index("ix_key_versions_created_at", "created_at"),          # scheduler scans (0003)
)

key_events = Table(
    "key_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(34), ForeignKey("keys.id"), nullable=False),
    Column("version", Integer, nullable=True),
    Column("action", String(32), nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=False),
    Column("principal", String(256), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_key_events_key_id", "key_id"),
)

tokens = Table(
    "tokens", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("principal", String(256), nullable=False),
    Column("policies", Text, nullable=False),             # unused since 0002; kept "[]"
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Added by 0002: the public handle of a token (list, revoke without the secret).
    Column("accessor", String(40), nullable=True),
    Column("ttl", Integer, nullable=True),                # seconds; renew extends by this
    Column("display_name", String(128), nullable=False, default="", server_default=""),
    Column("created_by", String(128), nullable=False, default="", server_default=""),
    Index("ix_tokens_principal", "principal"),
    Index("ux_tokens_accessor", "accessor", unique=True),
)

# -- access control (0002) -----------------------------------------------------------------

principals = Table(
    "principals", metadata,
    Column("name", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),           # "person" | "service"
    Column("roles", Text, nullable=False),                # JSON list of role names
    Column("metadata", Text, nullable=False),             # JSON object str -> str
    Column("certificate_subjects", Text, nullable=False),  # JSON list (RFC 4514 DN or SAN)
    Column("rate_limit", Float, nullable=True),           # requests per second
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

roles = Table(
    "roles", metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=False),
    Column("operations", Text, nullable=False),           # JSON list of operation patterns
    Column("builtin", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

grants = Table(
    "grants", metadata,
    Column("id", String(40), primary_key=True),
    Column("grantee_kind", String(16), nullable=False),   # "principal" | "role"
    Column("grantee", String(128), nullable=False),
    Column("operations", Text, nullable=False),           # JSON list of operation patterns
    Column("namespace", String(128), nullable=False),     # a namespace, or "*"
    Column("key_pattern", String(256), nullable=False),   # glob over key names, "*" = all
    Column("labels", Text, nullable=False),               # JSON object: all must match
    Column("condition", Text, nullable=True),             # on encryption context
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_grants_grantee", "grantee_kind", "grantee"),
)

approvals = Table(
    "approvals", metadata,
    Column("id", String(40), primary_key=True),
    Column("operation", String(64), nullable=False),
    Column("requester", String(128), nullable=False),
    Column("arguments", Text, nullable=False),            # JSON; never key material
    Column("summary", Text, nullable=False, default=""),
    Column("namespace", String(128), nullable=True),
    Column("key_id", String(34), nullable=True),
    # pending | executing | executed | failed | rejected | expired
    Column("state", String(16), nullable=False),
    Column("required", Integer, nullable=False),
    Column("approver_roles", Text, nullable=False),       # JSON list
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("result", Text, nullable=True),                # JSON of the operation's answer
    Column("error_code", String(64), nullable=True),
    Column("error_detail", Text, nullable=True),
    Index("ix_approvals_state", "state"),
)

approval_votes = Table(
    "approval_votes", metadata,
    Column("approval_id", String(40), ForeignKey("approvals.id"), primary_key=True),
    Column("principal", String(128), primary_key=True),
    Column("decision", String(16), nullable=False),       # "approve" | "reject"
    Column("comment", Text, nullable=False, default=""),
    Column("at", DateTime(timezone=True), nullable=False),
)

# -- audit (0002) ---------------------------------------------------------------------------

audit_records = Table(
    "audit_records", metadata,
    Column("chain", String(128), primary_key=True),       # one hash chain per node process
    Column("seq", BigInteger, primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("principal", String(128), nullable=True),
    Column("outcome", String(64), nullable=False),
    Column("namespace", String(128), nullable=True),
    Column("key_id", String(34), nullable=True),
    Column("record", Text, nullable=False),               # the exact JSON line of the chain
    Index("ix_audit_time", "time"),
    Index("ix_audit_principal", "principal"),
    Index("ix_audit_key", "key_id"),
    Index("ix_audit_operation", "operation"),
)

# -- lifecycle and monitoring (0003) ---------------------------------------------------------

key_usage = Table(
    "key_usage", metadata,                                # per-key usage statistics
    Column("key_id", String(34), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("operation", String(32), primary_key=True),
    Column("principal", String(128), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_used", DateTime(timezone=True), nullable=False),
    Column("last_used", DateTime(timezone=True), nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("id", String(40), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),       # info | warning | critical
    Column("dedup_key", String(256), nullable=False),     # same key within the window: one
    Column("summary", Text, nullable=False),
    Column("evidence", Text, nullable=False),             # JSON object; never secrets
    Column("count", Integer, nullable=False),
    Column("node", String(128), nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),          # open | acknowledged
    Column("acknowledged_by", String(128), nullable=True),
    Index("ix_alerts_dedup", "dedup_key", "last_seen"),
    Index("ix_alerts_last_seen", "last_seen"),
)

destruction_receipts = Table(
    "destruction_receipts", metadata,
    Column("id", String(40), primary_key=True),
    Column("key_id", String(34), nullable=False),
    Column("receipt", Text, nullable=False),              # signed JSON (service/receipts.py)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_destruction_receipts_key", "key_id"),
)

scheduler_jobs = Table(
    "scheduler_jobs", metadata,                           # last run of each job, any node
    Column("name", String(64), primary_key=True),
    Column("node", String(128), nullable=False),
    Column("last_started_at", DateTime(timezone=True), nullable=True),
    Column("last_finished_at", DateTime(timezone=True), nullable=True),
    Column("last_outcome", String(16), nullable=True),
    Column("items_done", Integer, nullable=False, default=0, server_default="0"),
    Column("items_failed", Integer, nullable=False, default=0, server_default="0"),
    Column("detail", Text, nullable=True),
)

import_tokens = Table(
    # Bring-your-own-key (service/key_import.py): one RSA-4096 wrapping key per token.
    "import_tokens", metadata,
    Column("id", String(64), primary_key=True),           # SHA-256 hex of the import token
    Column("key_id", String(34), ForeignKey("keys.id"), nullable=False),
    Column("wrapping_algorithm", String(32), nullable=False),
    Column("wrapped_private_key", LargeBinary, nullable=False),  # under the namespace KEK
    Column("public_key", Text, nullable=False),           # SPKI PEM handed to the importer
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Index("ix_import_tokens_key", "key_id"),
    Index("ix_import_tokens_expires_at", "expires_at"),
)
