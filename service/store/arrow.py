"""The Arrow codec both stores read and write through: GeoParquet files on disk and the
PostGIS store's COPY output become the same frames, in the same canonical dtypes."""

from __future__ import annotations

import functools
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import shapely

from service.store.conform import pandas_dtype
from service.store.tables import Table

ARROW_TYPES = {
    "text": pa.large_string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(),
    "date": pa.date32(), "timestamp": pa.timestamp("us"), "json": pa.large_string(),
}
GEOPARQUET_TYPES = {"point": ["Point"], "polygon": ["Polygon"], "multipolygon": ["MultiPolygon"]}


def _pandas_type(arrow_type: pa.DataType) -> object:
    """Nullable pandas dtypes for Arrow types, so both stores return the same dtypes."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype()
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def frame_from_arrow(table: Table, data: pa.Table, geometry: object | None = None
                     ) -> pd.DataFrame:
    """A stored table's frame (canonical dtypes, ``geometry`` last) from Arrow columns.

    ``geometry`` is an array of WKB (bytes or hex text) or None to return no geometry.
    """
    frame = data.to_pandas(types_mapper=_pandas_type, date_as_object=False,
                           ignore_metadata=True)
    for name in frame.columns:
        wanted = pandas_dtype(table.type_of(name))
        if str(frame[name].dtype) != wanted:
            frame[name] = frame[name].astype(wanted)
    if geometry is None:
        return frame
    values = shapely.from_wkb(np.asarray(geometry, dtype=object))
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(values, crs=4326), crs=4326)


def arrow_schema(table: Table, columns: list[str]) -> pa.Schema:
    return pa.schema([(c, ARROW_TYPES[table.type_of(c)]) for c in columns])


def frame_to_arrow(table: Table, frame: pd.DataFrame, columns: list[str] | None = None,
                   with_geometry: bool = True) -> pa.Table:
    """A conformed frame as an Arrow table (``columns`` of it, default all); geometry as
    WKB with GeoParquet metadata."""
    arrays = []
    names = list(columns or table.column_names)
    for name in names:
        col = frame[name]
        if table.type_of(name) == "date":
            arrays.append(pa.array(col.to_numpy().astype("datetime64[D]"), from_pandas=True))
        else:
            arrays.append(pa.array(col, type=ARROW_TYPES[table.type_of(name)],
                                   from_pandas=True))
    metadata = None
    if table.geometry and with_geometry:
        arrays.append(geometry_to_wkb(np.asarray(frame.geometry.values, dtype=object)))
        names.append("geometry")
        metadata = {b"geo": json.dumps({
            "version": "1.0.0", "primary_column": "geometry",
            "columns": {"geometry": {"encoding": "WKB", "crs": _wgs84_projjson(),
                                     "geometry_types": GEOPARQUET_TYPES[table.geometry]}},
        }).encode()}
    return pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(metadata)


def geometry_to_wkb(values: np.ndarray) -> pa.LargeBinaryArray:
    """Shapely geometries as little-endian WKB in one Arrow array (None -> null)."""
    return pa.array(shapely.to_wkb(values, byte_order=1), type=pa.large_binary(),
                    from_pandas=True)


@functools.cache
def _wgs84_projjson() -> dict:
    """EPSG:4326 spelled out, so GeoParquet readers report the CRS the store uses."""
    return pyproj.CRS.from_epsg(4326).to_json_dict()
