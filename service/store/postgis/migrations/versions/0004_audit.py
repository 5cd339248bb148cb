"""The audit trail: append-only (a trigger refuses UPDATE and DELETE).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("audit_id", sa.Text(collation="C"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("entity", sa.Text(), nullable=True),
        sa.Column("entity_id", sa.Text(), nullable=True),
        sa.Column("before", JSONB(), nullable=True),
        sa.Column("after", JSONB(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("county_adcode", sa.Text(collation="C"), nullable=True),
        sa.Column("h3", sa.Text(collation="C"), nullable=True),
        sa.PrimaryKeyConstraint("audit_id", name="audit_pkey"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_entity_id", "audit", ["entity_id"])
    op.create_index("ix_audit_county_adcode", "audit", ["county_adcode"])
    op.execute("""
        CREATE FUNCTION audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit trail is append-only';
        END $$;
    """)
    op.execute("CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
               "FOR EACH ROW EXECUTE FUNCTION audit_is_append_only()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_append_only ON audit")
    op.execute("DROP FUNCTION IF EXISTS audit_is_append_only()")
    op.drop_table("audit")
