"""Bulk transfer with COPY: frames in and tables out as CSV, written and parsed by Arrow.

Row-by-row inserts or fetches cost seconds per 100k rows; COPY moves a million rows in
seconds. Arrow's CSV writer is ~10x faster than ``DataFrame.to_csv`` and, quoting every
value but writing NULL as an unquoted empty field, keeps NULL and the empty string apart
without a NULL marker that real text could collide with. This module is also the one
place where geometries cross between Shapely and PostGIS (hex EWKB both ways).
"""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from psycopg import Cursor, sql
from psycopg.copy import QueuedLibpqWriter

from service.store.arrow import arrow_schema, frame_from_arrow, frame_to_arrow, geometry_to_wkb
from service.store.postgis.models import GEOMETRY_COLUMN, SRID
from service.store.postgis.statements import column_list, ident
from service.store.tables import Table

CHUNK_ROWS = 100_000  # rows per CSV buffer: bounds memory, keeps COPY streaming
_HEX_DIGITS = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_TO_HEX = np.stack([_HEX_DIGITS[np.arange(256) >> 4], _HEX_DIGITS[np.arange(256) & 15]], axis=1)
_FROM_HEX = np.zeros(256, dtype=np.uint8)
_FROM_HEX[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(10)
_FROM_HEX[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16)
_FROM_HEX[np.frombuffer(b"abcdef", dtype=np.uint8)] = np.arange(10, 16)


# the one conversion point between Shapely and PostGIS ---------------------------------------

def geometry_to_hex(values: np.ndarray, srid: int = SRID) -> pa.LargeStringArray:
    """Shapely geometries -> hex EWKB text with ``srid``, as PostGIS reads a geometry
    (None -> null).

    Built in NumPy from Shapely's little-endian WKB: EWKB is the same bytes with the SRID
    flag set in the type word and 4 SRID bytes after it. Shapely's own
    ``to_wkb(set_srid(...), hex=True, include_srid=True)`` takes 3x as long.
    """
    wkb = geometry_to_wkb(values)
    offsets, data = _buffers(wkb)
    present = np.diff(offsets) > 0
    out_offsets = offsets + 4 * np.concatenate([[0], np.cumsum(present)])
    starts = out_offsets[:-1][present]
    is_srid = np.zeros(int(out_offsets[-1]), dtype=bool)
    for k in range(5, 9):  # after the byte-order byte and the 4-byte type word
        is_srid[starts + k] = True
    out = np.empty(len(is_srid), dtype=np.uint8)
    out[~is_srid] = data[offsets[0]:offsets[-1]]
    out[is_srid] = np.tile(np.frombuffer(np.uint32(srid).tobytes(), dtype=np.uint8),
                           int(present.sum()))
    out[starts + 4] |= 0x20  # high byte of the little-endian type word: EWKB "has SRID"
    return pa.Array.from_buffers(
        pa.large_string(), len(wkb),
        [wkb.buffers()[0], pa.py_buffer((out_offsets - out_offsets[0]) * 2),
         pa.py_buffer(_TO_HEX[out].reshape(-1))],
        wkb.null_count, wkb.offset)


def geometry_from_hex(values: pa.Array) -> np.ndarray:
    """Hex (E)WKB text, as PostGIS prints a geometry -> Shapely geometries (decoded in NumPy:
    Shapely parses binary WKB faster than hex)."""
    values = values.cast(pa.large_string())
    offsets, data = _buffers(values)
    pairs = data[: len(data) // 2 * 2].reshape(-1, 2)
    decoded = (_FROM_HEX[pairs[:, 0]] << 4) | _FROM_HEX[pairs[:, 1]]
    binary = pa.Array.from_buffers(
        pa.large_binary(), len(values),
        [values.buffers()[0], pa.py_buffer(offsets // 2), pa.py_buffer(decoded)],
        values.null_count, values.offset)
    return shapely.from_wkb(binary.to_numpy(zero_copy_only=False))


def _buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, from the buffer start) and data bytes of a large binary/string."""
    _, offsets, data = array.buffers()
    return (np.frombuffer(offsets, dtype=np.int64),
            np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(
                0, dtype=np.uint8))


# in ------------------------------------------------------------------------------------------

def copy_frame(cursor: Cursor, target: str, spec: Table, frame: pd.DataFrame,
               columns: list[str] | None = None) -> int:
    """COPY a conformed frame (``spec``'s columns, geometry as ``geom``) into ``target``.

    Chunks of rows are encoded while a writer thread streams the previous ones, so the
    client's CSV work overlaps the server's parsing."""
    return copy_into(cursor, sql.SQL(ident(target)), spec, frame, columns)


def copy_into(cursor: Cursor, target: sql.Composable, spec: Table, frame: pd.DataFrame,
              columns: list[str] | None = None) -> int:
    """:func:`copy_frame` into a table named by a composed identifier (a batch's staging
    tables, whose names are made per batch: ``service.store.postgis.staging``)."""
    columns = list(columns or spec.column_names)
    names = [*columns, *([GEOMETRY_COLUMN] if spec.geometry else [])]
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        target, sql.SQL(", ").join(sql.Identifier(n) for n in names))
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        for start in range(0, len(frame), CHUNK_ROWS):  # a few large buffers, not rows
            part = frame.iloc[start:start + CHUNK_ROWS]
            data = frame_to_arrow(spec, part, columns, with_geometry=False)
            if spec.geometry:
                data = data.append_column(GEOMETRY_COLUMN, geometry_to_hex(
                    np.asarray(part.geometry.values, dtype=object)))
            sink = pa.BufferOutputStream()
            pacsv.write_csv(data, sink, options)
            copy.write(memoryview(sink.getvalue()))
    return len(frame)


# out -----------------------------------------------------------------------------------------

def copy_query(cursor: Cursor, select: str | sql.Composable, schema: pa.Schema) -> pa.Table:
    """Run ``COPY (select) TO STDOUT`` and parse the CSV with Arrow into ``schema``.

    ``select`` is built from quoted identifiers only (COPY takes no bind parameters).
    """
    buffer = io.BytesIO()
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(
        select if isinstance(select, sql.Composable) else sql.SQL(select))
    with cursor.copy(statement) as copy:
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


def read_table(cursor: Cursor, spec: Table, columns: list[str],
               keyed_by: str | None = None) -> pd.DataFrame:
    """``columns`` of a stored table (``geometry`` names the geom column) as a frame; with
    ``keyed_by`` (a table of ``_n bigint, _k text``) only the rows whose key is a ``_k``,
    in ``_n`` order (sorted here, not by the server: no sort spilled to its disk)."""
    names = [c for c in columns if c != "geometry"]
    with_geometry = spec.geometry is not None and "geometry" in columns
    select_names = [*names, *([GEOMETRY_COLUMN] if with_geometry else [])]
    schema = arrow_schema(spec, names)
    if with_geometry:
        schema = schema.append(pa.field(GEOMETRY_COLUMN, pa.large_string()))
    select: str | sql.Composable = \
        f"SELECT {column_list(select_names)} FROM {ident(spec.name)}"
    if keyed_by is not None:
        select = sql.SQL("SELECT {}, w._n FROM {} t JOIN {} w ON t.{} = w._k").format(
            sql.SQL(", ").join(sql.Identifier("t", c) for c in select_names),
            sql.Identifier(spec.name), sql.Identifier(keyed_by), sql.Identifier(spec.key))
        schema = schema.append(pa.field("_n", pa.int64()))
    data = copy_query(cursor, select, schema)
    if keyed_by is not None:
        data = data.take(pc.sort_indices(data.column("_n"))).drop_columns(["_n"])
    if not with_geometry:
        return frame_from_arrow(spec, data)
    geometry = geometry_from_hex(data.column(GEOMETRY_COLUMN).combine_chunks())
    frame = frame_from_arrow(spec, data.drop_columns([GEOMETRY_COLUMN]))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)
