"""The equipment's use place (设备使用场所) as the registry form gives it (住宅、商场、学校…).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("equipment", sa.Column("use_place", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("equipment", "use_place")
