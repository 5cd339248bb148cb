"""The record of layer builds (``riskmap build``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The layer tables themselves (``layer_*``) are derived data: each build creates them from
:mod:`layers.registry` and swaps them in within its transaction, so they are not part of
the migrated schema. This table records which build is in force.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "layer_builds",
        sa.Column("build_id", sa.Text(collation="C"), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("rules_version", sa.Text(), nullable=True),
        sa.Column("rules_hash", sa.Text(), nullable=True),
        sa.Column("data_version", sa.Text(), nullable=True),
        sa.Column("report", JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("build_id", name="layer_builds_pkey"),
    )
    op.create_index("ix_layer_builds_built_at", "layer_builds", ["built_at"])


def downgrade() -> None:
    op.drop_table("layer_builds")
