"""Initial schema: environments, flags, segments, tokens, users, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON()  # json, not jsonb: jsonb reorders keys, and variant order is contract
TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    environments = op.create_table(
        "environments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("config_version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    for document_key in ("flags", "segments"):
        op.create_table(
            document_key,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("key", sa.String(128), nullable=False, unique=True),
            sa.Column("definition", JSON, nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("created_at", TIME, nullable=False),
            sa.Column("updated_at", TIME, nullable=False),
        )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column(
            "environment",
            sa.String(128),
            sa.ForeignKey("environments.key", ondelete="RESTRICT"),
            nullable=True,
        ),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_key", sa.String(255), nullable=False),
        sa.Column("environment", sa.String(128), nullable=True),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.Column("changes", JSON, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_audit_target", "audit_log", ["target_type", "target_key"])
    op.create_index("ix_audit_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_at", "audit_log", ["at"])

    # Every installation starts with the three usual environments.
    now = datetime.now(UTC)
    op.bulk_insert(
        environments,
        [
            {
                "key": key,
                "name": key.capitalize(),
                "protected": key == "production",
                "config_version": 1,
                "created_at": now,
            }
            for key in ("development", "staging", "production")
        ],
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("users")
    op.drop_table("tokens")
    op.drop_table("segments")
    op.drop_table("flags")
    op.drop_table("environments")
