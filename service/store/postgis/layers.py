"""Layer tables in PostGIS: created from :mod:`layers.registry` by each build.

A build fills ``layer_x__next`` twins (COPY, then indexes) and, at the end of its one
transaction, drops each old table and renames the twin into place, so readers see the
previous build until the commit and the new one after it. The tables are derived data,
not migrated schema; ``layer_builds`` (migration 0002) records the build in force.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
from geoalchemy2 import Geometry
from psycopg import Cursor, sql
from sqlalchemy import BigInteger, Column, Connection, Index, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import JSON
from sqlalchemy.schema import CreateIndex, CreateTable

from layers.frames import LEVELS
from service.store.postgis.copy import copy_frame
from service.store.postgis.models import CODE_COLUMNS, GEOMETRY_COLUMN, SQL_TYPES, SRID
from service.store.postgis.statements import NEXT_SUFFIX
from service.store.tables import Table as Spec

# Columns the service filters layers by: a b-tree index on each a layer has.
FILTER_COLUMNS = (
    "level", "resolution", "province_adcode", "city_adcode", "county_adcode", "adcode",
    "admin_level", "parent_adcode", "park_id", "officer_id", "h3", "industry",
    "top_category", "credit_code", "unit_credit_code", "grade",
)
LAYER_CODE_COLUMNS = CODE_COLUMNS | {"fid", "adcode", "parent_adcode", "top_category",
                                     "industry", "cluster_id"}


def sql_table(spec: Spec, name: str) -> Table:
    """The SQL table of a layer spec under ``name``: typed columns, ``fid`` key, geometry."""
    columns = [Column("fid", Text(collation="C"), primary_key=True)]
    for column, abstract in spec.columns:
        if column == "fid":
            continue
        if column in LAYER_CODE_COLUMNS:
            sql_type = Text(collation="C")
        elif abstract == "json":
            sql_type = JSON()  # not jsonb: a layer's JSON text goes out exactly as built
        else:
            sql_type = SQL_TYPES[abstract]()
        columns.append(Column(column, sql_type))
    if spec.geometry:
        columns.append(Column(GEOMETRY_COLUMN, Geometry(spec.geometry.upper(), srid=SRID,
                                                        spatial_index=False)))
    return Table(name, MetaData(), *columns)


# Point layers a page asks for by risk level within a bounding box (the map's 分级别 filter
# on its items and tiles): besides the GiST index of every row, one GiST index of each
# level's rows (partial, ``WHERE level = 'red'``). A level in a bbox then reads that
# level's entries in the bbox, not a BitmapAnd of the bbox's entries of every level and
# the level's of the whole table, which grows with the table (docs/benchmarks.md, "A level
# within a bounding box"). A partial index serves a plan made with the level's value: the
# store's connections plan every statement with its values (``plan_cache_mode``), and a
# list of levels is asked as one equality per level (query.in_list).
LEVEL_INDEXED = frozenset({"layer_equipment", "layer_units", "layer_overdue",
                           "layer_frequency"})


class LayerIndex(NamedTuple):
    """An index of a layer table: on ``column`` by ``method``, of the rows of ``level``
    only when given."""

    name: str
    column: str
    method: str
    level: str | None = None


def index_names(spec: Spec, name: str) -> list[LayerIndex]:
    """The indexes of a layer table called ``name``."""
    out = [LayerIndex(f"ix_{name}_{c}", c, "btree") for c in FILTER_COLUMNS
           if c in spec.column_names]
    if spec.geometry:
        out.append(LayerIndex(f"gix_{name}_{GEOMETRY_COLUMN}", GEOMETRY_COLUMN, "gist"))
        if spec.name in LEVEL_INDEXED:
            out += [LayerIndex(f"gix_{name}_{GEOMETRY_COLUMN}_{level}", GEOMETRY_COLUMN,
                               "gist", level) for level in LEVELS]
    return out


def create_indexes(conn: Connection, spec: Spec, name: str) -> None:
    """Every index of the layer table ``name`` (filled: built from its rows)."""
    table = sql_table(spec, name)
    for index in index_names(spec, name):
        where = table.c.level == index.level if index.level else None
        conn.execute(CreateIndex(Index(index.name, table.c[index.column],
                                       postgresql_using=index.method,
                                       postgresql_where=where)))


def fill_next(conn: Connection, cursor: Cursor, spec: Spec, frame: pd.DataFrame) -> None:
    """Create ``<table>__next``, COPY ``frame`` (conformed) into it and index it."""
    name = spec.name + NEXT_SUFFIX
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
    conn.execute(CreateTable(sql_table(spec, name)))
    copy_frame(cursor, name, spec, frame)
    create_indexes(conn, spec, name)
    cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))


def swap_in(cursor: Cursor, spec: Spec) -> None:
    """Replace the layer table by its filled twin (names of key and indexes follow)."""
    final, name = spec.name, spec.name + NEXT_SUFFIX
    ident = sql.Identifier
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(final)))
    cursor.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(name), ident(final)))
    cursor.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
        ident(final), ident(f"{name}_pkey"), ident(f"{final}_pkey")))
    for old, new in zip(index_names(spec, name), index_names(spec, final), strict=True):
        cursor.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(ident(old.name),
                                                                     ident(new.name)))


# Per-build counts of a point layer's rows by stored H3 cell and the columns a scope or a
# tile filter names (regions, park, level): the whole-scope H3 counts behind low-zoom and
# over-full tiles are sums over this table (~30k rows at 1M equipment) instead of a GROUP BY
# over every row of the scope (0.9 s at 1M, 5.6 s at 10M for a province; docs/scaling.md).
COUNTED_LAYERS = ("equipment",)
COUNT_COLUMNS = ("province_adcode", "city_adcode", "county_adcode", "park_id", "level")
COUNTS_SUFFIX = "__cells"


def counts_table(spec: Spec, name: str | None = None) -> Table:
    """The counts table of ``spec`` (named ``name``, default ``<layer table>__cells``)."""
    columns = [Column("h3", Text(collation="C"))]
    columns += [Column(c, Text(collation="C")) for c in COUNT_COLUMNS]
    columns.append(Column("n", BigInteger()))
    return Table(name or spec.name + COUNTS_SUFFIX, MetaData(), *columns)


def fill_counts_next(cursor: Cursor, spec: Spec) -> None:
    """``<table>__cells__next`` from the filled ``<table>__next``."""
    fill_counts(cursor, spec.name + NEXT_SUFFIX, spec.name + COUNTS_SUFFIX + NEXT_SUFFIX)


def fill_counts(cursor: Cursor, source: str, name: str) -> None:
    """The counts table ``name`` (made anew) of the point layer table ``source``: rows with
    a cell and a geometry, counted by cell and :data:`COUNT_COLUMNS`."""
    ident = sql.Identifier
    grouped = sql.SQL(", ").join(ident(c) for c in ("h3", *COUNT_COLUMNS))
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name)))
    cursor.execute(sql.SQL(
        "CREATE TABLE {} AS SELECT {cols}, count(*)::bigint AS n FROM {} "
        "WHERE h3 IS NOT NULL AND {geom} IS NOT NULL GROUP BY {cols}").format(
        ident(name), ident(source), cols=grouped, geom=ident(GEOMETRY_COLUMN)))
    cursor.execute(sql.SQL("ANALYZE {}").format(ident(name)))


def swap_counts_in(cursor: Cursor, spec: Spec) -> None:
    final = spec.name + COUNTS_SUFFIX
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(final)))
    cursor.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(final + NEXT_SUFFIX), sql.Identifier(final)))


def table_exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:name) IS NOT NULL"),
                        {"name": f'public."{name}"'}).scalar_one()
