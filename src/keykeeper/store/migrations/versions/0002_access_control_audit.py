"""access control and audit: principals, roles, grants, approvals, audit records;
namespace and token columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("namespaces", sa.Column("description", sa.Text, nullable=False,
                                          server_default=""))
    op.add_column("namespaces", sa.Column("rate_limit", sa.Float, nullable=True))
    op.add_column("namespaces", sa.Column("created_by", sa.String(128), nullable=False,
                                          server_default=""))
    op.add_column("namespaces", sa.Column("deleted_at", _TS, nullable=True))

    op.add_column("tokens", sa.Column("accessor", sa.String(40), nullable=True))
    op.add_column("tokens", sa.Column("ttl", sa.Integer, nullable=True))
    op.add_column("tokens", sa.Column("display_name", sa.String(128), nullable=False,
                                      server_default=""))
    op.add_column("tokens", sa.Column("created_by", sa.String(128), nullable=False,
                                      server_default=""))
    op.create_index("ix_tokens_principal", "tokens", ["principal"])
    op.create_index("ux_tokens_accessor", "tokens", ["accessor"], unique=True)

    op.create_table(
        "principals",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("certificate_subjects", sa.Text, nullable=False),
        sa.Column("rate_limit", sa.Float, nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "roles",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("operations", sa.Text, nullable=False),
        sa.Column("builtin", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("grantee_kind", sa.String(16), nullable=False),
        sa.Column("grantee", sa.String(128), nullable=False),
        sa.Column("operations", sa.Text, nullable=False),
        sa.Column("namespace", sa.String(128), nullable=False),
        sa.Column("key_pattern", sa.String(256), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("condition", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_grants_grantee", "grants", ["grantee_kind", "grantee"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("namespace", sa.String(128), nullable=True),
        sa.Column("key_id", sa.String(34), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("approver_roles", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_detail", sa.Text, nullable=True),
    )
    op.create_index("ix_approvals_state", "approvals", ["state"])
    op.create_table(
        "approval_votes",
        sa.Column("approval_id", sa.String(40), sa.ForeignKey("approvals.id"),
                  primary_key=True),
        sa.Column("principal", sa.String(128), primary_key=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_table(
        "audit_records",
        sa.Column("chain", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("time", _TS, nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("principal", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("namespace", sa.String(128), nullable=True),
        sa.Column("key_id", sa.String(34), nullable=True),
        sa.Column("record", sa.Text, nullable=False),
    )
    for name, column in (("ix_audit_time", "time"), ("ix_audit_principal", "principal"),
                         ("ix_audit_key", "key_id"), ("ix_audit_operation", "operation")):
        op.create_index(name, "audit_records", [column])


def downgrade() -> None:
    raise NotImplementedError("keykeeper migrations are forward-only")
