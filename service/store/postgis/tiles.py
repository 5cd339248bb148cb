"""Vector tiles on PostGIS: each a single SQL statement with bound parameters.

:func:`mvt` is the usual ``ST_AsMVTGeom`` CTE under ``ST_AsMVT`` with the caller's scope in
the WHERE clause and ``geom && ST_Transform(ST_TileEnvelope(z, x, y), 4326)`` for the GiST
index. :func:`cell_counts` counts rows per H3 parent cell in SQL: the layer tables keep only
the stored-resolution ``h3``, and a parent is plain bit arithmetic on the 64-bit index (set
the resolution field, fill the finer digits with 7), so no h3 extension is needed.
:func:`layer_points` reads just the columns (and lon/lat) a caller's indicators need.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Connection,
    Double,
    Integer,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.sql.elements import ColumnElement

from service.store.arrow import arrow_schema, frame_from_arrow
from service.store.postgis.layers import (
    COUNT_COLUMNS,
    COUNTED_LAYERS,
    counts_table,
    table_exists,
)
from service.store.postgis.models import GEOMETRY_COLUMN, SRID
from service.store.postgis.query import (
    NARROW_DEG,
    copied_arrow,
    layer_sql_table,
    narrow,
    selected_columns,
    sql_condition,
)
from service.store.query import Condition
from service.store.tables import LAYER_TABLES

WEB_MERCATOR = 3857
FEATURE_ID = "_id"
BBox = tuple[float, float, float, float]


def located_where(table: Table, where: tuple[Condition, ...], bbox: BBox | None
                  ) -> ColumnElement[bool]:
    """``where`` on ``table`` (a region under a narrow ``bbox`` row by row), its geometry
    present and within ``bbox`` (None: anywhere)."""
    conditions = [sql_condition(table, c, row_by_row=narrow(bbox)) for c in where]
    geom = table.c[GEOMETRY_COLUMN]
    conditions.append(geom.is_not(None))
    if bbox is not None:
        conditions.append(geom.op("&&")(func.ST_MakeEnvelope(*bbox, SRID)))
    return and_(true(), *conditions)


def h3_int(column: ColumnElement) -> ColumnElement:
    """A 15-hex-digit H3 cell as bigint (the top bit of an H3 index is 0)."""
    return cast(cast(literal("x", Text) + func.lpad(column, 16, "0"), BIT(64)), BigInteger)


def h3_parent(column: ColumnElement, resolution: int) -> ColumnElement:
    """The parent (bigint) at ``resolution`` of a finer H3 cell stored as hex text."""
    keep = ~(0xF << 52) & 0x7FFF_FFFF_FFFF_FFFF       # clear the resolution field
    fill = (resolution << 52) | ((1 << (3 * (15 - resolution))) - 1)  # finer digits = 7
    return h3_int(column).op("&")(literal(keep, BigInteger)).op("|")(
        literal(fill, BigInteger))


def _property(table: Table, name: str, kind: str) -> ColumnElement:
    column = table.c[name]
    if kind == "json":
        return cast(column, Text).label(name)
    if kind == "date":
        return func.to_char(column, "YYYY-MM-DD").label(name)
    if kind == "timestamp":
        return func.to_char(column, 'YYYY-MM-DD"T"HH24:MI:SS').label(name)
    return column


def mvt(conn: Connection, layer: str, where: tuple[Condition, ...], z: int, x: int, y: int,
        *, extent: int, buffer: int, cap: int | None, cell_ids: bool,
        fields: tuple[tuple[str, str], ...]) -> bytes | None:
    """The MVT of ``layer`` rows matching ``where`` in tile z/x/y (layer name = layer id,
    properties = ``fid`` and ``fields``, (name, kind) pairs of the layer's fields);
    ``cell_ids`` sets the feature id to the row's H3 cell. None when more than ``cap`` rows
    fall in the tile: the caller then aggregates instead (a tile is never cut short)."""
    statement = _tile_select(layer, where, extent=extent, buffer=buffer, cap=cap,
                             cell_ids=cell_ids, fields=fields, row_by_row=_narrow_tile(z))
    row = conn.execute(statement, _tile_params(z, x, y, extent, buffer)).one()
    conn.rollback()
    return None if cap is not None and row.n > cap else bytes(row.tile or b"")


def mvt_statement(layer: str, where: tuple[Condition, ...], z: int, x: int, y: int, *,
                  extent: int, buffer: int, cap: int | None, cell_ids: bool,
                  fields: tuple[tuple[str, str], ...] | None = None) -> Select:
    """The statement :func:`mvt` runs for tile z/x/y, with the tile's values bound (to
    compile or EXPLAIN it)."""
    return _tile_select(layer, where, extent=extent, buffer=buffer, cap=cap,
                        cell_ids=cell_ids, fields=fields, row_by_row=_narrow_tile(z)
                        ).params(_tile_params(z, x, y, extent, buffer))


def _narrow_tile(z: int) -> bool:
    """Whether a tile at ``z`` is a narrow bbox (query.NARROW_DEG: z12 and finer)."""
    return 360 / (1 << z) <= NARROW_DEG


def _tile_params(z: int, x: int, y: int, extent: int, buffer: int) -> dict[str, float]:
    # the buffer's points are drawn too: the search box is the tile grown by it
    return {"tile_z": z, "tile_x": x, "tile_y": y,
            "tile_margin": _tile_size(z) * buffer / extent}


@functools.lru_cache(maxsize=128)  # an officer's scope binds ~100 KB of cells
def _tile_select(layer: str, where: tuple[Condition, ...], *, extent: int, buffer: int,
                 cap: int | None, cell_ids: bool,
                 fields: tuple[tuple[str, str], ...] | None, row_by_row: bool = False
                 ) -> Select:
    """One statement: ``n``, the rows in the tile counted up to cap + 1 (a narrow scan that
    stops there), and ``tile``, the MVT, built only when ``n`` is within ``cap``; the tile
    (z, x, y and the search margin) bound at execution.

    Made once per layer, scope, filters and fields, not per tile: building the SQLAlchemy
    expression and its cache key cost ~0.7 ms of Python per tile, more than PostGIS takes
    for a sparse z14 tile; a reused statement keeps its cache key, so SQLAlchemy goes
    straight to its compiled form. ``row_by_row``: the scope's region checked on each row
    in the tile, not read from its index (a narrow tile, see query.NARROW_DEG)."""
    spec = LAYER_TABLES[layer]
    table = layer_sql_table(layer)
    geom = table.c[GEOMETRY_COLUMN]
    envelope = func.ST_TileEnvelope(cast(bindparam("tile_z", type_=Integer), Integer),
                                    cast(bindparam("tile_x", type_=Integer), Integer),
                                    cast(bindparam("tile_y", type_=Integer), Integer))
    margin = cast(bindparam("tile_margin", type_=Double), Double)
    search = func.ST_Transform(func.ST_Expand(envelope, margin), SRID)
    selected = and_(true(), *(sql_condition(table, c, row_by_row=row_by_row) for c in where),
                    geom.op("&&")(search))
    wanted = spec.columns if fields is None else (("fid", "text"), *fields)
    columns = [_property(table, name, kind) for name, kind in wanted]
    if cell_ids:
        columns.append(h3_int(table.c.h3).label(FEATURE_ID))
    shaped = (select(
        func.ST_AsMVTGeom(func.ST_Transform(geom, WEB_MERCATOR), envelope, extent, buffer,
                          true()).label("geom"), *columns).where(selected)
        # features in fid order: the same rows give the same bytes whatever plan PostgreSQL
        # picks (a seeded tile and a drawn one, two servers: one strong ETag)
        .order_by(table.c.fid).cte("mvtgeom"))
    args = [shaped.table_valued(), literal(layer, Text), extent, literal("geom", Text)]
    if cell_ids:
        args.append(literal(FEATURE_ID, Text))
    tile = select(func.ST_AsMVT(*args)).scalar_subquery()
    if cap is None:
        return select(literal(0).label("n"), tile.label("tile"))
    hits = select(literal(1).label("hit")).where(selected).limit(cap + 1).cte("hits")
    count = select(func.count()).select_from(hits).scalar_subquery()
    return select(count.label("n"), case((count > cap, None), else_=tile).label("tile"))


def cell_counts(conn: Connection, layer: str, where: tuple[Condition, ...], resolution: int,
                bbox: BBox | None, levels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``layer`` per H3 cell at ``resolution`` (from the ``h3`` column), within
    ``bbox`` (lon/lat; None = the whole scope): the cells (uint64) and a count matrix whose
    columns are all rows, then the rows of each of ``levels``."""
    counted = _counts_table(conn, layer) if bbox is None else None
    if counted is not None and all(c.column in ("h3", *COUNT_COLUMNS) for c in where):
        # the build's per-cell counts, summed: the same figures, a few thousand rows read
        inner = (select(h3_parent(counted.c.h3, resolution).label("cell"), counted.c.level,
                        counted.c.n)
                 .where(and_(true(), *(sql_condition(counted, c) for c in where)))
                 .subquery("rows"))
        counts = [func.sum(inner.c.n)] + [
            func.coalesce(func.sum(inner.c.n).filter(inner.c.level == v), 0) for v in levels]
    else:
        table = layer_sql_table(layer)
        picked = [h3_parent(table.c.h3, resolution).label("cell"), *(
            [table.c.level] if levels else [])]
        inner = (select(*picked)
                 .where(located_where(table, where, bbox), table.c.h3.is_not(None))
                 .subquery("rows"))
        counts = [func.count()] + [func.count().filter(inner.c.level == v) for v in levels]
    # through COPY and Arrow, not Python rows: the province's 43,163 cells at 10M took
    # 110 ms to fetch as rows (0.5 s before that, as Row objects into NumPy)
    columns = ["cell", *(f"n{j}" for j in range(len(counts)))]
    data = copied_arrow(conn, select(inner.c.cell, *counts).group_by(inner.c.cell)
                        .order_by(inner.c.cell),
                        pa.schema([(name, pa.int64()) for name in columns]))
    if not data.num_rows:
        return np.zeros(0, dtype=np.uint64), np.zeros((0, 1 + len(levels)), dtype=np.int64)
    matrix = np.column_stack([data.column(name).to_numpy() for name in columns[1:]])
    return data.column("cell").to_numpy().astype(np.uint64), matrix.astype(np.int64)


def _counts_table(conn: Connection, layer: str) -> Table | None:
    """The layer's per-build counts table (:func:`counts_table`), if the build in force
    has one (builds written before it was kept have none)."""
    if layer not in COUNTED_LAYERS:
        return None
    table = counts_table(LAYER_TABLES[layer])
    return table if table_exists(conn, table.name) else None


def layer_points(conn: Connection, layer: str, where: tuple[Condition, ...], bbox: BBox | None,
                 columns: tuple[str, ...]) -> pd.DataFrame:
    """``columns`` of the located ``layer`` rows matching ``where`` within ``bbox`` (None =
    the whole scope), with ``lon`` and ``lat``, in the store's canonical dtypes."""
    spec = LAYER_TABLES[layer]
    table = layer_sql_table(layer)
    geom = table.c[GEOMETRY_COLUMN]
    statement = select(*selected_columns(table, spec, list(columns), False),
                       func.ST_X(geom).label("lon"), func.ST_Y(geom).label("lat")
                       ).where(located_where(table, where, bbox))
    # through COPY and Arrow: a city's points around a dense z14 tile are ~70,000 rows at
    # 10M, 0.65 s as Python rows, 0.17 s so (docs/benchmarks.md, "A level within a
    # bounding box, and a regulator's region under a narrow bbox")
    lonlat = [pa.field("lon", pa.float64()), pa.field("lat", pa.float64())]
    data = copied_arrow(conn, statement, pa.schema([*arrow_schema(spec, list(columns)),
                                                    *lonlat]))
    frame = frame_from_arrow(spec, data.drop_columns(["lon", "lat"]))
    for name in ("lon", "lat"):
        frame[name] = data.column(name).to_numpy().astype("float64")
    return frame


def _tile_size(z: int) -> float:
    """Width of a tile at zoom ``z`` in EPSG:3857 metres."""
    return 2 * 20037508.342789244 / (1 << z)
