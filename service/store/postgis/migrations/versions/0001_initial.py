"""Initial schema: the postgis extension, every stored table, its keys and indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Frozen copy of the tables as they were at this revision (it must not follow later edits of
``service/store/tables.py``; a change there needs a new revision).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

T, F, BI, B, D, TS = sa.Text, sa.Double, sa.BigInteger, sa.Boolean, sa.Date, sa.DateTime


def C() -> sa.Text:
    """Codes and ids: byte-wise collation (fast to index, Python's order)."""
    return sa.Text(collation="C")


META = (("row_hash", BI), ("batch_id", C), ("source_file", T), ("source_row", BI),
        ("updated_at", TS))
LOCATION = (
    ("lon", F), ("lat", F), ("source_crs", T), ("geocode_precision", T),
    ("province_adcode", C), ("city_adcode", C), ("county_adcode", C),
    ("h3", C), ("h3_5", C), ("h3_6", C), ("h3_7", C),
    ("park_id", C), ("venue_id", C), ("flags", T),
)
ADMIN = ("province_adcode", "city_adcode", "county_adcode")
LOCATION_INDEXES = ("h3", "h3_5", "h3_6", "h3_7", *ADMIN, "park_id", "venue_id")

# name: (key, columns after the key, geometry type, indexed columns)
TABLES: dict[str, tuple[str, tuple, str | None, tuple[str, ...]]] = {
    "equipment": ("registration_code", (
        ("category_code", C), ("category", T), ("unit_credit_code", C), ("unit_name", T),
        ("address", T), *LOCATION, ("commissioned_on", D), ("last_inspected_on", D),
        ("next_inspection_due", D), ("inspection_conclusion", T), ("status", T),
        ("insured", B), *META,
    ), "POINT", (*LOCATION_INDEXES, "unit_credit_code")),
    "units": ("credit_code", (
        ("name", T), ("industry", T), ("size", T), ("address", T), *LOCATION,
        ("five_have_score", BI), ("blacklisted", B), ("accidents_3y", BI), *META,
    ), "POINT", LOCATION_INDEXES),
    "hazards": ("hazard_id", (
        ("registration_code", C), ("found_on", D), ("level", T), ("description", T),
        ("status", T), ("deadline", D), ("closed_on", D), *META,
    ), None, ("registration_code",)),
    "checks": ("check_id", (
        ("credit_code", C), ("checked_on", D), ("officer_id", C), ("result", T), *META,
    ), None, ("credit_code",)),
    "parks": ("park_id", (
        ("name", T), ("kind", T), ("source_crs", T), *((c, C) for c in ADMIN),
        ("area_km2", F), *META,
    ), "MULTIPOLYGON", ADMIN),
    "venues": ("venue_id", (
        ("name", T), ("kind", T), ("daily_visitors", BI), ("source_crs", T),
        *((c, C) for c in ADMIN), ("area_km2", F), *META,
    ), "MULTIPOLYGON", ADMIN),
    "officers": ("officer_id", (
        ("name", T), ("county_adcode", C), ("phone", T), ("cell_count", BI), *META,
    ), None, ("county_adcode",)),
    "batches": ("batch_id", (
        ("started_at", TS), ("finished_at", TS), ("files", JSONB), ("report", JSONB),
    ), None, ()),
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    for name, (key, columns, geometry, indexed) in TABLES.items():
        items = [sa.Column(key, C(), nullable=False),
                 *(sa.Column(c, t(), nullable=True) for c, t in columns)]
        if geometry:
            items.append(sa.Column("geom", Geometry(geometry, srid=4326, spatial_index=False),
                                   nullable=True))
        op.create_table(name, *items, sa.PrimaryKeyConstraint(key, name=f"{name}_pkey"))
        if geometry:
            op.create_index(f"gix_{name}_geom", name, ["geom"], postgresql_using="gist")
        for column in indexed:
            op.create_index(f"ix_{name}_{column}", name, [column])

    op.create_table(
        "officer_cells",
        sa.Column("officer_id", C(), nullable=False), sa.Column("h3", C(), nullable=False),
        sa.PrimaryKeyConstraint("officer_id", "h3", name="officer_cells_pkey"),
    )
    op.create_index("ix_officer_cells_h3", "officer_cells", ["h3"])
    op.create_table(
        "rejects",
        sa.Column("reject_id", BI(), sa.Identity(always=False), nullable=False),
        sa.Column("batch_id", C(), nullable=True), sa.Column("file", T(), nullable=True),
        sa.Column("row", BI(), nullable=True),
        *(sa.Column(c, T(), nullable=True)
          for c in ("kind", "field", "code", "reason_zh", "reason_en", "value")),
        sa.Column("raw", JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("reject_id", name="rejects_pkey"),
    )
    op.create_index("ix_rejects_batch_id", "rejects", ["batch_id"])
    op.create_table(
        "meta",
        sa.Column("key", T(), nullable=False), sa.Column("value", T(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="meta_pkey"),
    )


def downgrade() -> None:
    for name in ("meta", "rejects", "officer_cells", *reversed(TABLES)):
        op.drop_table(name)
