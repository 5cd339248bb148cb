"""Published random draws (双随机、一公开).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "draws",
        sa.Column("draw_id", sa.Text(collation="C"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("seed", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("params", JSONB(), nullable=True),
        sa.Column("build_id", sa.Text(), nullable=True),
        sa.Column("result", JSONB(), nullable=True),
        sa.Column("row_hash", sa.BigInteger(), nullable=True),
        sa.Column("batch_id", sa.Text(collation="C"), nullable=True),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("source_row", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("draw_id", name="draws_pkey"),
    )
    op.create_index("ix_draws_created_at", "draws", ["created_at"])


def downgrade() -> None:
    op.drop_table("draws")
