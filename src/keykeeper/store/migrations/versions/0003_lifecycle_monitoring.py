"""automated lifecycle and monitoring: activation and deactivation dates, crypto-periods,
usage limits and counters, minimum versions, per-version compromise, namespace lifecycle
defaults, key usage statistics, alerts, destruction receipts, scheduler job state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("keys", sa.Column("activation_date", _TS, nullable=True))
    op.add_column("keys", sa.Column("deactivation_date", _TS, nullable=True))
    op.add_column("keys", sa.Column("min_encryption_version", sa.Integer, nullable=False,
                                   server_default="0"))
    op.add_column("keys", sa.Column("min_decryption_version", sa.Integer, nullable=False,
                                   server_default="0"))
    op.add_column("keys", sa.Column("usage_limit", sa.BigInteger, nullable=True))
    op.add_column("keys", sa.Column("usage_rotate_fraction", sa.Float, nullable=True))
    op.add_column("keys", sa.Column("originator_usage_period", sa.Integer, nullable=True))
    op.add_column("keys", sa.Column("recipient_usage_period", sa.Integer, nullable=True))
    op.add_column("keys", sa.Column("rotation_reason", sa.String(32), nullable=True))
    op.create_index("ix_keys_next_rotation_time", "keys", ["next_rotation_time"])
    op.create_index("ix_keys_destruction_time", "keys", ["destruction_time"])
    # The scheduler's scans (scheduler/scans.py): dates that fall due, version ages.
    op.create_index("ix_keys_activation_date", "keys", ["activation_date"])
    op.create_index("ix_keys_deactivation_date", "keys", ["deactivation_date"])
    op.create_index("ix_keys_originator_usage_period", "keys", ["originator_usage_period"])

    op.add_column("key_versions", sa.Column("protect_count", sa.BigInteger, nullable=False,
                                   server_default="0"))
    op.add_column("key_versions", sa.Column("deactivated_at", _TS, nullable=True))
    op.add_column("key_versions", sa.Column("compromised_at", _TS, nullable=True))
    op.add_column("key_versions", sa.Column("compromise_reason", sa.Text, nullable=True))
    op.create_index("ix_key_versions_created_at", "key_versions", ["created_at"])

    op.add_column("namespaces", sa.Column("rotation_period", sa.Integer, nullable=True))
    op.add_column("namespaces", sa.Column("originator_usage_period", sa.Integer, nullable=True))
    op.add_column("namespaces", sa.Column("recipient_usage_period", sa.Integer, nullable=True))

    op.create_table(
        "key_usage",
        sa.Column("key_id", sa.String(34), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("operation", sa.String(32), primary_key=True),
        sa.Column("principal", sa.String(128), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("first_used", _TS, nullable=False),
        sa.Column("last_used", _TS, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(256), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_alerts_dedup", "alerts", ["dedup_key", "last_seen"])
    op.create_index("ix_alerts_last_seen", "alerts", ["last_seen"])
    op.create_table(
        "destruction_receipts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key_id", sa.String(34), nullable=False),
        sa.Column("receipt", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_destruction_receipts_key", "destruction_receipts", ["key_id"])
    op.create_table(
        "scheduler_jobs",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("last_started_at", _TS, nullable=True),
        sa.Column("last_finished_at", _TS, nullable=True),
        sa.Column("last_outcome", sa.String(16), nullable=True),
        sa.Column("items_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("items_failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("detail", sa.Text, nullable=True),
    )


def downgrade() -> None:
    raise NotImplementedError("keykeeper migrations are forward-only")
