"""Per-build sums of the equipment layer by finest risk cell and scope (``__risk``).

A city regulator's risk cells are nested from the sums of the city's pieces per H3 cell at
:data:`layers.aggregate.FINEST_RISK_RESOLUTION` (:func:`service.selection.scoped_risk_cells`).
Made on every request from the points around a tile, that read ~70,000 rows for a dense z14
tile at 10M. Each build therefore sums the layer by (``risk_cell``, the columns a scope
names) into ``layer_equipment__risk``, the sums being the columns of
:data:`layers.aggregate.TOTAL_COLUMNS`, and a tile reads the few hundred rows of its
cells (docs/benchmarks.md, "A city regulator's risk cells from per-build sums").

Each row has a point, the mean of its pieces' points. Every piece of a cell touching a
tile lies within the tile grown by :meth:`service.mvt.Tile.cell_pad`, so the mean of any of
its groups does too: the rows in that box hold every cell the tile shows, whole, as the
pieces in the box do. A scope or filter on another column, or a build made before this
table, falls back to the pieces themselves.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
from geoalchemy2 import Geometry
from psycopg import Cursor, sql
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    MetaData,
    Table,
    Text,
    literal_column,
    select,
)

from layers.aggregate import SCORE_STEPS, TOTAL_COLUMNS
from service.mvt import BBox
from service.store.postgis.layers import table_exists
from service.store.postgis.models import GEOMETRY_COLUMN, SRID
from service.store.postgis.query import copied_arrow
from service.store.postgis.tiles import located_where
from service.store.query import Condition

RISK_SUFFIX = "__risk"
#: The columns a caller's scope restricts equipment by (:func:`service.scope.layer_scope`).
SCOPE_KEYS = ("province_adcode", "city_adcode", "county_adcode", "park_id", "h3")
SUMMED_LAYER = "layer_equipment"
#: A scope's whole read (the first tile of a city graded once, docs/benchmarks.md "A kept
#: scope's risk-cell tiles") by its key, not a scan of every province's rows: a city or
#: county by its county code's prefix (the rows are stored in county order), a park, an
#: officer's cells. (index suffix, column, operator class)
SCOPE_INDEXES = (("_county", "county_adcode", "text_pattern_ops"),
                 ("_park", "park_id", "text_ops"), ("_h3", "h3", "text_ops"))
_COLUMNS = literal_column(", ".join(f'"{name}"' for name in ("cell", *(
    n for n, _, _ in TOTAL_COLUMNS))))
_SCHEMA = pa.schema([("cell", pa.int64()), *((name, pa.float64()) for name, _, _ in
                                             TOTAL_COLUMNS)])


@functools.lru_cache(maxsize=4)
def risk_sums_table(name: str = SUMMED_LAYER + RISK_SUFFIX) -> Table:
    """The sums table (for reading it; a build makes it with :func:`fill_risk_sums`)."""
    return Table(name, MetaData(), Column("cell", BigInteger()),
                 *(Column(c, Text(collation="C")) for c in SCOPE_KEYS),
                 *(Column(n, Float()) for n, _, _ in TOTAL_COLUMNS),
                 Column(GEOMETRY_COLUMN, Geometry("POINT", srid=SRID, spatial_index=False)))


def _sum(what: str, value: str | None) -> sql.Composable:
    """What a group adds to one matrix column (:data:`TOTAL_COLUMNS`' ``what``): the same
    rule :func:`layers.aggregate._parts` applies to each piece."""
    d = sql.Identifier("D")
    used = sql.SQL("in_use")
    if what in ("level", "category"):
        column = sql.Identifier("level" if what == "level" else "top_category")
        used = sql.SQL("in_use AND {} = {}").format(column, sql.Literal(value))
    elif what == "category_score":
        used = sql.SQL("in_use AND top_category = {}").format(sql.Literal(value))
    elif what == "overdue":
        used = sql.SQL("in_use AND overdue")
    if what == "rows":
        total = sql.SQL("count(*)")
    elif what in ("score", "category_score"):
        # in whole twentieths, as _parts counts them: exact in any order
        total = sql.SQL("coalesce(sum(round({} * {})) FILTER (WHERE {}), 0)").format(
            d, sql.Literal(SCORE_STEPS), used)
    elif what in ("open_hazards", "open_major_hazards"):
        total = sql.SQL("coalesce(sum({}), 0)").format(sql.Identifier(what))
    else:
        total = sql.SQL("count(*) FILTER (WHERE {})").format(used)
    return sql.SQL("({})::double precision").format(total)


def fill_risk_sums(cursor: Cursor, source: str, name: str) -> None:
    """The sums table ``name`` (made anew, indexed) of the equipment layer table
    ``source``: located pieces summed by risk cell and :data:`SCOPE_KEYS`."""
    ident = sql.Identifier
    keys = sql.SQL(", ").join(ident(c) for c in ("risk_cell", *SCOPE_KEYS))
    sums = sql.SQL(", ").join(sql.SQL("{} AS {}").format(_sum(what, value), ident(column))
                              for column, what, value in TOTAL_COLUMNS)
    geom = ident(GEOMETRY_COLUMN)
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(name)))
    cursor.execute(sql.SQL(
        "CREATE TABLE {name} AS SELECT ('x' || lpad(risk_cell, 16, '0'))::bit(64)::bigint "
        "AS cell, {scope}, {sums}, ST_SetSRID(ST_MakePoint(avg(ST_X({geom})), "
        "avg(ST_Y({geom}))), {srid}) AS {geom} FROM {source} "
        "WHERE risk_cell IS NOT NULL AND {geom} IS NOT NULL GROUP BY {keys} "
        "ORDER BY county_adcode, cell").format(
        name=ident(name), scope=sql.SQL(", ").join(ident(c) for c in SCOPE_KEYS), sums=sums,
        geom=geom, srid=sql.Literal(SRID), source=ident(source), keys=keys))
    cursor.execute(sql.SQL("CREATE INDEX {} ON {} USING gist ({})").format(
        ident(name + "_geom"), ident(name), geom))
    for suffix, column, opclass in SCOPE_INDEXES:
        cursor.execute(sql.SQL("CREATE INDEX {} ON {} ({} {})").format(
            ident(name + suffix), ident(name), ident(column), sql.SQL(opclass)))
    cursor.execute(sql.SQL("ANALYZE {}").format(ident(name)))


def swap_risk_sums_in(cursor: Cursor, next_name: str, final: str) -> None:
    ident = sql.Identifier
    cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident(final)))
    cursor.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(ident(next_name),
                                                                 ident(final)))
    for suffix in ("_geom", *(suffix for suffix, _, _ in SCOPE_INDEXES)):
        cursor.execute(sql.SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
            ident(next_name + suffix), ident(final + suffix)))


def summable(conn: Connection, where: tuple[Condition, ...]) -> Table | None:
    """The sums table, when the build in force has one and ``where`` names only its
    :data:`SCOPE_KEYS` (else the caller sums the pieces)."""
    if any(c.column not in SCOPE_KEYS for c in where):
        return None
    table = risk_sums_table()
    return table if table_exists(conn, table.name) else None


def cell_sums(conn: Connection, table: Table, where: tuple[Condition, ...], bbox: BBox | None,
              ) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``table`` matching ``where`` within ``bbox`` (None: the whole scope):
    their cells (uint64, one per row, repeated across scopes) and sums."""
    # the 31 columns as one fragment of quoted constant names: compiling them one by one
    # took 3.5 ms of a 20 ms tile
    data = copied_arrow(conn, select(_COLUMNS).select_from(table)
                        .where(located_where(table, where, bbox)), _SCHEMA)
    totals = np.column_stack([data.column(n).to_numpy() for n, _, _ in TOTAL_COLUMNS]) \
        if data.num_rows else np.zeros((0, len(TOTAL_COLUMNS)))
    return data.column("cell").to_numpy().astype(np.uint64), totals.astype("float64")
