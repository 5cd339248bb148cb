"""Bulk transfer with COPY: frames in as CSV built by pandas, tables out as CSV parsed by Arrow.

Row-by-row inserts or fetches cost seconds per 100k rows; COPY moves a million rows in a
few seconds. This module is also the one place where geometries cross between Shapely and
PostGIS (hex EWKB both ways).
"""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from psycopg import Cursor

from service.store.embedded import arrow_schema, frame_from_arrow
from service.store.postgis.models import GEOMETRY_COLUMN, SRID
from service.store.postgis.statements import column_list, ident
from service.store.tables import Table

NULL = r"\N"
CHUNK_ROWS = 200_000  # rows per CSV buffer: bounds memory, keeps COPY streaming


# the one conversion point between Shapely and PostGIS ---------------------------------------

def geometry_to_ewkb(values: np.ndarray) -> np.ndarray:
    """Shapely geometries -> hex EWKB text with SRID 4326 (None stays None)."""
    return shapely.to_wkb(shapely.set_srid(values, SRID), hex=True, include_srid=True)


def geometry_from_ewkb(values: np.ndarray) -> np.ndarray:
    """Hex EWKB text as PostGIS prints a geometry -> Shapely geometries."""
    return shapely.from_wkb(values)


# in ------------------------------------------------------------------------------------------

def copy_frame(cursor: Cursor, target: str, spec: Table, frame: pd.DataFrame,
               columns: list[str] | None = None) -> int:
    """COPY a conformed frame (``spec``'s columns, geometry as ``geom``) into ``target``."""
    columns = columns or spec.column_names
    out = frame[columns]
    names = list(columns)
    if spec.geometry:
        out = out.assign(**{GEOMETRY_COLUMN: geometry_to_ewkb(
            np.asarray(frame.geometry.values, dtype=object))})
        names.append(GEOMETRY_COLUMN)
    out = pd.DataFrame(out)  # a plain frame: the geometry is text now
    sql = (f"COPY {ident(target)} ({column_list(names)}) "
           f"FROM STDIN (FORMAT csv, NULL '{NULL}')")
    with cursor.copy(sql) as copy:
        for start in range(0, len(out), CHUNK_ROWS):
            part = out.iloc[start:start + CHUNK_ROWS]
            copy.write(part.to_csv(header=False, index=False, na_rep=NULL,
                                   lineterminator="\n"))
    return len(out)


# out -----------------------------------------------------------------------------------------

def copy_query(cursor: Cursor, select: str, schema: pa.Schema) -> pa.Table:
    """Run ``COPY (select) TO STDOUT`` and parse the CSV with Arrow into ``schema``.

    ``select`` is built from quoted identifiers only (COPY takes no bind parameters).
    """
    buffer = io.BytesIO()
    with cursor.copy(f"COPY ({select}) TO STDOUT (FORMAT csv)") as copy:
        for data in copy:
            buffer.write(data)
    if buffer.tell() == 0:
        return schema.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=schema.names, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema, null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]),
    )


def read_table(cursor: Cursor, spec: Table, columns: list[str]) -> pd.DataFrame:
    """``columns`` of a stored table (``geometry`` names the geom column) as a frame."""
    names = [c for c in columns if c != "geometry"]
    with_geometry = spec.geometry is not None and "geometry" in columns
    select_names = [*names, *([GEOMETRY_COLUMN] if with_geometry else [])]
    schema = arrow_schema(spec, names)
    if with_geometry:
        schema = schema.append(pa.field(GEOMETRY_COLUMN, pa.string()))
    data = copy_query(cursor, f"SELECT {column_list(select_names)} FROM {ident(spec.name)}",
                      schema)
    if not with_geometry:
        return frame_from_arrow(spec, data)
    hexes = data.column(GEOMETRY_COLUMN).to_numpy(zero_copy_only=False)
    frame = frame_from_arrow(spec, data.drop_columns([GEOMETRY_COLUMN]))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry_from_ewkb(hexes), crs=4326),
                            crs=4326)
