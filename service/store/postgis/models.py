"""SQLAlchemy/GeoAlchemy2 models of the stored tables, built from :mod:`service.store.tables`.

The column lists come from the table specs so the two stores cannot drift apart; this
module adds what only PostGIS needs: SQL types, keys, the ``geom`` column (EPSG:4326, GiST
index) and b-tree indexes on the columns the service filters and groups by. The migrations
under ``migrations/versions`` are frozen copies; ``tests`` check that they still match.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from service.store import tables as specs

SRID = 4326
GEOMETRY_COLUMN = "geom"
SQL_TYPES: dict[str, type[TypeEngine]] = {
    "text": Text, "float": Double, "int": BigInteger, "bool": Boolean, "date": Date,
    "timestamp": DateTime, "json": JSONB,
}
# Codes and ids compare byte-wise (COLLATE "C"): sorting and indexing them is faster than
# with a linguistic collation, and "smallest id" means the same as in Python.
CODE_COLUMNS = frozenset({
    "registration_code", "credit_code", "unit_credit_code", "hazard_id", "check_id",
    "park_id", "venue_id", "officer_id", "category_code", "province_adcode", "city_adcode",
    "county_adcode", "h3", "h3_5", "h3_6", "h3_7", "batch_id", "build_id", "user_id",
    "scope", "token_hash", "audit_id", "draw_id", "session_hash",
})
LOCATION_INDEXES = ("h3", "h3_5", "h3_6", "h3_7", "province_adcode", "city_adcode",
                    "county_adcode", "park_id", "venue_id")
ADMIN_INDEXES = ("province_adcode", "city_adcode", "county_adcode")
# b-tree indexes per table (the key has its primary-key index already)
INDEXED: dict[str, tuple[str, ...]] = {
    "equipment": (*LOCATION_INDEXES, "unit_credit_code"),
    "units": LOCATION_INDEXES,
    "hazards": ("registration_code",),
    "checks": ("credit_code",),
    "parks": ADMIN_INDEXES,
    "venues": ADMIN_INDEXES,
    "officers": ("county_adcode",),
    "officer_cells": ("h3",),
    "rejects": ("batch_id",),
    "batches": (),
    "layer_builds": ("built_at",),
    "users": (),
    "sessions": ("user_id",),
    "audit": ("at", "entity_id", "county_adcode"),
    "draws": ("created_at",),
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={"pk": "%(table_name)s_pkey"})


def index_name(table: str, column: str) -> str:
    return f"ix_{table}_{column}"


def spatial_index_name(table: str) -> str:
    return f"gix_{table}_{GEOMETRY_COLUMN}"


def _table(spec: specs.Table) -> Table:
    """A SQL table for a spec: typed columns, its key, its geometry and its indexes."""
    composite = spec.name == specs.OFFICER_CELLS.name  # an officer owns many cells
    items: list[SchemaItem] = []
    for name, abstract in spec.columns:
        is_key = name == spec.key and not composite
        if spec.name == specs.REJECTS.name and name == spec.key:
            items.append(Column(name, BigInteger, Identity(), primary_key=True))
        else:
            sql_type = Text(collation="C") if name in CODE_COLUMNS else SQL_TYPES[abstract]()
            items.append(Column(name, sql_type, primary_key=is_key,
                                nullable=not (is_key or composite)))
    if composite:
        items.append(PrimaryKeyConstraint("officer_id", "h3"))
    if spec.geometry:
        items.append(Column(GEOMETRY_COLUMN, Geometry(spec.geometry.upper(), srid=SRID,
                                                      spatial_index=False)))
        items.append(Index(spatial_index_name(spec.name), GEOMETRY_COLUMN,
                           postgresql_using="gist"))
    items.extend(Index(index_name(spec.name, c), c) for c in INDEXED[spec.name])
    return Table(spec.name, Base.metadata, *items)


class Equipment(Base):
    __table__ = _table(specs.TABLES["equipment"])


class Unit(Base):
    __table__ = _table(specs.TABLES["units"])


class Hazard(Base):
    __table__ = _table(specs.TABLES["hazards"])


class Check(Base):
    __table__ = _table(specs.TABLES["checks"])


class Park(Base):
    __table__ = _table(specs.TABLES["parks"])


class Venue(Base):
    __table__ = _table(specs.TABLES["venues"])


class Officer(Base):
    __table__ = _table(specs.TABLES["officers"])


class OfficerCell(Base):
    __table__ = _table(specs.OFFICER_CELLS)


class Reject(Base):
    __table__ = _table(specs.REJECTS)


class BatchRecord(Base):
    __table__ = _table(specs.BATCHES)


class LayerBuildRecord(Base):
    __table__ = _table(specs.LAYER_BUILDS)


class User(Base):
    __table__ = _table(specs.USERS)


Index("ix_users_token_hash", User.__table__.c.token_hash, unique=True)


class Session(Base):
    __table__ = _table(specs.SESSIONS)


class AuditEntry(Base):
    __table__ = _table(specs.AUDIT)


class Draw(Base):
    __table__ = _table(specs.DRAWS)


class RegionHistory(Base):
    """Each build's region indicators, kept (migration 0008; service/store/history.py)."""

    __table__ = Table(
        specs.REGION_HISTORY.name, Base.metadata,
        *(Column(name, Text(collation="C") if name in ("build_id", "level", "adcode",
                                                      "parent_adcode")
                 else SQL_TYPES[abstract](), nullable=name not in ("build_id", "level",
                                                                   "adcode"))
          for name, abstract in specs.REGION_HISTORY.columns),
        PrimaryKeyConstraint("build_id", "level", "adcode"),
        Index("ix_region_history_adcode", "adcode"),
        Index("ix_region_history_parent_adcode", "parent_adcode"))


class Meta(Base):
    """Store-wide settings (``h3_resolution``) and the data version, as key/value text."""

    __table__ = Table("meta", Base.metadata, Column("key", Text, primary_key=True),
                      Column("value", Text, nullable=False))


MODELS: dict[str, type[Base]] = {
    m.__table__.name: m for m in (Equipment, Unit, Hazard, Check, Park, Venue, Officer,
                                  OfficerCell, Reject, BatchRecord)
}


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object | None) -> bool:
    """For autogenerate and schema checks: ignore tables that are not ours (PostGIS's
    spatial_ref_sys and the like) instead of proposing to drop them."""
    return not (type_ == "table" and reflected and compare_to is None
                and name not in Base.metadata.tables)


class EvidenceRecord(Base):
    """Photos and files kept as evidence of a hazard's rectification, bytes included
    (migration 0009; service/evidence.py)."""

    __table__ = Table(
        "evidence", Base.metadata,
        Column("evidence_id", Text(collation="C"), nullable=False),
        Column("hazard_id", Text(collation="C"), nullable=False),
        Column("filename", Text(), nullable=False),
        Column("media_type", Text(), nullable=False),
        Column("size", BigInteger(), nullable=False),
        Column("sha256", Text(), nullable=False),
        Column("uploaded_by", Text(), nullable=False),
        Column("uploaded_at", DateTime(), nullable=False),
        Column("audit_id", Text(collation="C"), nullable=True),
        Column("content", LargeBinary(), nullable=False),
        PrimaryKeyConstraint("evidence_id", name="evidence_pkey"),
    )


Index("ix_evidence_hazard_id", EvidenceRecord.__table__.c.hazard_id)


class TileSeed(Base):
    """A seeded vector tile of the build in force, by ETag (migration 0010;
    service/tile_seed.py)."""

    __table__ = Table(
        "tile_seeds", Base.metadata,
        Column("etag", Text(collation="C"), nullable=False),
        Column("build_id", Text(collation="C"), nullable=False),
        Column("data", LargeBinary(), nullable=False),
        PrimaryKeyConstraint("etag", name="tile_seeds_pkey"),
    )
