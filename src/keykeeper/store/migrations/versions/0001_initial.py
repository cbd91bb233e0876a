"""initial schema: configuration, namespaces, keys, labels, versions, events, tokens

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "system_config",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "namespaces",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("wrapped_kek", sa.LargeBinary, nullable=False),
        sa.Column("allow_legacy_rsa_2048", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "keys",
        sa.Column("id", sa.String(34), primary_key=True),
        sa.Column("namespace", sa.String(128), sa.ForeignKey("namespaces.name"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("primary_version", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("exportable", sa.Boolean, nullable=False),
        sa.Column("protection", sa.String(16), nullable=False),
        sa.Column("rotation_period", sa.Integer, nullable=True),
        sa.Column("next_rotation_time", _TS, nullable=True),
        sa.Column("destruction_time", _TS, nullable=True),
        sa.Column("compromised_at", _TS, nullable=True),
        sa.Column("compromise_reason", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("namespace", "name", name="uq_keys_namespace_name"),
    )
    op.create_index("ix_keys_state", "keys", ["state"])
    op.create_table(
        "key_labels",
        sa.Column("key_id", sa.String(34), sa.ForeignKey("keys.id"), primary_key=True),
        sa.Column("label", sa.String(128), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_index("ix_key_labels_label_value", "key_labels", ["label", "value"])
    op.create_table(
        "key_versions",
        sa.Column("key_id", sa.String(34), sa.ForeignKey("keys.id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("wrapped_material", sa.LargeBinary, nullable=True),
        sa.Column("public_key", sa.Text, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("destroyed_at", _TS, nullable=True),
    )
    op.create_table(
        "key_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(34), sa.ForeignKey("keys.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_key_events_key_id", "key_events", ["key_id"])
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("policies", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
    )


def downgrade() -> None:
    for table in ("tokens", "key_events", "key_versions", "key_labels", "keys", "namespaces",
                  "system_config"):
        op.drop_table(table)
