"""Usage buckets hold floats too: sums of measured values and the newest window's end.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric_counts") as batch:
        batch.add_column(sa.Column("amount", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("metric_counts") as batch:
        batch.drop_column("amount")
