"""root of trust and distribution: key origin (generated or external), HSM-protected
key versions, import tokens for bring-your-own-key

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("keys", sa.Column("origin", sa.String(16), nullable=False,
                                   server_default="generated"))
    op.add_column("key_versions", sa.Column("hsm_key_id", sa.String(64), nullable=True))
    op.create_table(
        "import_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(34), sa.ForeignKey("keys.id"), nullable=False),
        sa.Column("wrapping_algorithm", sa.String(32), nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
    )
    op.create_index("ix_import_tokens_key", "import_tokens", ["key_id"])
    op.create_index("ix_import_tokens_expires_at", "import_tokens", ["expires_at"])


def downgrade() -> None:
    raise NotImplementedError("keykeeper migrations are forward-only")
