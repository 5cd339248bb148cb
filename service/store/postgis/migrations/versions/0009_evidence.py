"""Evidence of hazard rectification: photos and files with their bytes (``evidence``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

One row per uploaded file (JPEG, PNG, WebP or PDF, checked by its magic bytes before it is
kept; see service/evidence.py), the bytes as ``bytea``; the upload's audit entry is named
by ``audit_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("evidence_id", sa.Text(collation="C"), nullable=False),
        sa.Column("hazard_id", sa.Text(collation="C"), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("media_type", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.Column("audit_id", sa.Text(collation="C"), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("evidence_id", name="evidence_pkey"),
    )
    op.create_index("ix_evidence_hazard_id", "evidence", ["hazard_id"])


def downgrade() -> None:
    op.drop_table("evidence")
