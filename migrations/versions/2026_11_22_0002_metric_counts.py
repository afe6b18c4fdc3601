"""SDK metric counts in time buckets (used when no Redis is configured).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "metric_counts",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(128), nullable=False),
        sa.Column("flag", sa.String(128), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("series", sa.String(400), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("environment", "flag", "bucket", "series", name="uq_metric_counts"),
    )
    op.create_index("ix_metric_counts_window", "metric_counts", ["environment", "flag", "bucket"])


def downgrade() -> None:
    op.drop_table("metric_counts")
