"""The kept history of builds: each build's region indicators (``region_history``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

One row per (build, admin level, region), appended by every build in the transaction that
swaps its layers in; the numeric indicators are one JSONB object (see
service/store/history.py for why).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "region_history",
        sa.Column("build_id", sa.Text(collation="C"), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("rules_hash", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(collation="C"), nullable=False),
        sa.Column("adcode", sa.Text(collation="C"), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("parent_adcode", sa.Text(collation="C"), nullable=True),
        sa.Column("indicators", JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("build_id", "level", "adcode", name="region_history_pkey"),
    )
    op.create_index("ix_region_history_adcode", "region_history", ["adcode"])
    op.create_index("ix_region_history_parent_adcode", "region_history", ["parent_adcode"])


def downgrade() -> None:
    op.drop_table("region_history")
