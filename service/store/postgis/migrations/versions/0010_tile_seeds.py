"""Seeded vector tiles of the build in force (``tile_seeds``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

``riskmap seed`` renders the busiest tiles of a build (the province-wide views at the zooms
where a tile holds the most rows) and keeps their bytes here, keyed by their ETag, so the
first viewer of a tile is answered by one indexed read instead of rendering it (see
service/tile_seed.py). Writing a build deletes the rows: they belong to the build before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tile_seeds",
        sa.Column("etag", sa.Text(collation="C"), nullable=False),
        sa.Column("build_id", sa.Text(collation="C"), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("etag", name="tile_seeds_pkey"),
    )


def downgrade() -> None:
    op.drop_table("tile_seeds")
