"""SQLAlchemy Core tables. Key material is stored only wrapped (``wrapped_*`` columns);
tokens only as SHA-256 hashes. Schema changes go through Alembic (store/migrations)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
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
    UniqueConstraint("namespace", "name", name="uq_keys_namespace_name"),
    Index("ix_keys_state", "state"),
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
    Column("policies", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
