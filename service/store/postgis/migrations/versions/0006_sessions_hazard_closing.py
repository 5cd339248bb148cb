"""Browser sessions held on the server; who verified a closed hazard and on what evidence.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("hazards", sa.Column("verified_by", sa.Text(), nullable=True))
    op.add_column("hazards", sa.Column("evidence", sa.Text(), nullable=True))
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.Text(collation="C"), nullable=False),
        sa.Column("user_id", sa.Text(collation="C"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("last_seen", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("session_hash", name="sessions_pkey"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_column("hazards", "evidence")
    op.drop_column("hazards", "verified_by")
